import { lazy, Suspense, type ReactNode } from 'react';
import { useAuth } from './auth/AuthProvider';
import { Nav } from './components/Nav';
import { ProblemMessage } from './components/ProblemMessage';
import { match, useLocation } from './lib/router';

// Pages load on first visit: the charting library stays out of the first
// download until a page draws a chart.
const Overview = lazy(() => import('./pages/Overview'));
const Runs = lazy(() => import('./pages/Runs'));
const RunDetail = lazy(() => import('./pages/RunDetail'));
const Models = lazy(() => import('./pages/Models'));
const Backtests = lazy(() => import('./pages/Backtests'));
const BacktestReport = lazy(() => import('./pages/BacktestReport'));
const Jobs = lazy(() => import('./pages/Jobs'));
const Data = lazy(() => import('./pages/Data'));
const Trading = lazy(() => import('./pages/Trading'));
const Admin = lazy(() => import('./pages/Admin'));

type Route = { pattern: string; render: (p: Record<string, string>) => ReactNode; title: string; scope?: string };

const ROUTES: Route[] = [
  { pattern: '/', title: 'Overview', render: () => <Overview /> },
  { pattern: '/runs', title: 'Runs', render: () => <Runs /> },
  { pattern: '/runs/:id', title: 'Run', render: (p) => <RunDetail id={p.id} /> },
  { pattern: '/models', title: 'Models', render: () => <Models /> },
  { pattern: '/backtests', title: 'Backtests', render: () => <Backtests /> },
  { pattern: '/backtests/:id', title: 'Backtest report', render: (p) => <BacktestReport id={p.id} /> },
  { pattern: '/jobs', title: 'Jobs', render: () => <Jobs /> },
  { pattern: '/data', title: 'Data', render: () => <Data /> },
  { pattern: '/trading', title: 'Trading', render: () => <Trading /> },
  { pattern: '/admin', title: 'Admin', scope: 'admin', render: () => <Admin /> },
];

export function resolveRoute(path: string): { route: Route; params: Record<string, string> } | null {
  for (const route of ROUTES) {
    const params = match(route.pattern, path);
    if (params) return { route, params };
  }
  return null;
}

function Page({ path }: { path: string }) {
  const { can } = useAuth();
  const found = resolveRoute(path);
  if (!found) {
    return (
      <div className="card">
        <h1>Not found</h1>
        <p>There is no page at {path}.</p>
      </div>
    );
  }
  if (found.route.scope && !can(found.route.scope)) {
    return (
      <div className="card" data-testid="not-allowed">
        <h1>{found.route.title}</h1>
        <p>You are not allowed to see this page: it needs the “{found.route.scope}” scope, which your role does not have.</p>
      </div>
    );
  }
  return <>{found.route.render(found.params)}</>;
}

function Screen({ title, children }: { title: string; children: ReactNode }) {
  return (
    <main id="main" className="screen">
      <div className="card narrow">
        <h1>{title}</h1>
        {children}
      </div>
    </main>
  );
}

export function App() {
  const auth = useAuth();
  const { path } = useLocation();

  if (auth.status === 'signed-out') {
    return (
      <Screen title="Signed out">
        <p data-testid="signed-out">Signed out — sign in again when you are ready.</p>
        <ProblemMessage problem={auth.error} />
        <button type="button" className="primary" onClick={auth.signIn}>
          Sign in again
        </button>
      </Screen>
    );
  }
  if (auth.status === 'error') {
    return (
      <Screen title="Sign-in failed">
        <ProblemMessage problem={auth.error} />
        <button type="button" className="primary" onClick={auth.signIn}>
          Sign in again
        </button>
      </Screen>
    );
  }
  if (auth.status !== 'ready') {
    return (
      <Screen title="tradelab">
        <p aria-live="polite">{auth.status === 'redirecting' ? 'Taking you to sign in…' : 'Signing in…'}</p>
      </Screen>
    );
  }
  return (
    <>
      <Nav />
      <main id="main" tabIndex={-1}>
        <Suspense fallback={<p className="muted">Loading…</p>}>
          <Page path={path} />
        </Suspense>
      </main>
      <footer className="footer muted">
        Charts by{' '}
        <a href="https://www.tradingview.com/" rel="noreferrer">
          TradingView Lightweight Charts
        </a>
      </footer>
    </>
  );
}
