/** The chat's skip link: the keyboard passes the rail and the channel list (WCAG 2.4.1). */
/** The first thing Tab reaches: straight to the composer (or the main area on Home). */
export function SkipLink({ to, children }: { to: string; children: string }) {
  return (
    <a
      className="skip-link"
      href={`#${to}`}
      onClick={(e) => {
        const el = document.getElementById(to);
        if (!el) return;
        e.preventDefault();
        el.focus();
      }}
    >
      {children}
    </a>
  );
}
