import { useState } from 'react';
import { useAuth } from '../auth/AuthProvider';
import { Link, useLocation } from '../lib/router';
import { useTheme, type ThemeChoice } from '../lib/theme';

export interface NavItem {
  href: string;
  label: string;
  /** Shown only with this scope. */
  scope?: string;
}

export const NAV: NavItem[] = [
  { href: '/', label: 'Overview' },
  { href: '/runs', label: 'Runs' },
  { href: '/models', label: 'Models' },
  { href: '/backtests', label: 'Backtests' },
  { href: '/jobs', label: 'Jobs' },
  { href: '/data', label: 'Data' },
  { href: '/trading', label: 'Trading' },
  { href: '/admin', label: 'Admin', scope: 'admin' },
];

export function Nav() {
  const { me, can, signOut } = useAuth();
  const { path } = useLocation();
  const { choice, setChoice } = useTheme();
  const [open, setOpen] = useState(false);
  const items = NAV.filter((n) => !n.scope || can(n.scope));
  const current = (href: string) => (href === '/' ? path === '/' : path === href || path.startsWith(`${href}/`));
  return (
    <header className="topbar">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <span className="brand">tradelab</span>
      <button
        type="button"
        className="menu-toggle"
        aria-expanded={open}
        aria-controls="primary-nav"
        onClick={() => setOpen((o) => !o)}
      >
        Menu
      </button>
      <nav id="primary-nav" aria-label="Main" className={open ? 'open' : undefined}>
        <ul>
          {items.map((n) => (
            <li key={n.href}>
              <Link href={n.href} aria-current={current(n.href) ? 'page' : undefined} onClick={() => setOpen(false)}>
                {n.label}
              </Link>
            </li>
          ))}
        </ul>
      </nav>
      <div className="session">
        <label className="theme-pick">
          <span className="sr-only">Theme</span>
          <select value={choice} onChange={(e) => setChoice(e.target.value as ThemeChoice)}>
            <option value="system">System theme</option>
            <option value="light">Light</option>
            <option value="dark">Dark</option>
          </select>
        </label>
        {me ? (
          <span className="who" data-testid="signed-in-user">
            {me.username || 'signed in'} <span className="muted">({me.role})</span>
          </span>
        ) : null}
        <button type="button" onClick={() => void signOut()}>
          Sign out
        </button>
      </div>
    </header>
  );
}
