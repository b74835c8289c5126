/** The "BOT" tag beside a bot's name, as Discord shows it (issue 17; the message says `bot`). */
import './bots.css';

export function BotTag() {
  return (
    <span className="bot-tag" title="This account is a bot">
      BOT
    </span>
  );
}
