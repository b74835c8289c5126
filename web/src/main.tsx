import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.js';
import { startAuth } from './auth.js';
import './styles.css';

// The URL key first: the page's first addresses (avatars, the event stream) carry it.
void startAuth().then(() =>
  createRoot(document.getElementById('root')!).render(
    <StrictMode>
      <App />
    </StrictMode>,
  ),
);
