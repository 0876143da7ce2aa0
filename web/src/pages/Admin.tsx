import { useState, type FormEvent } from 'react';
import { api, must } from '../api/client';
import { asProblem, type Problem } from '../api/problem';
import type { AddedUser, Client, User } from '../api/types';
import { useAuth } from '../auth/AuthProvider';
import { LoadState, Section, StatusBadge } from '../components/Bits';
import { Field } from '../components/Field';
import { ProblemMessage } from '../components/ProblemMessage';
import { Table } from '../components/Table';
import { fmtTime } from '../lib/format';
import { useLoad } from '../lib/useLoad';

const ROLES = ['viewer', 'researcher', 'admin'] as const;

/** Adds a user; their one-time password is shown here once. */
function AddUserForm({ onAdded }: { onAdded: () => void }) {
  const [username, setUsername] = useState('');
  const [role, setRole] = useState<string>('viewer');
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [added, setAdded] = useState<AddedUser | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setProblem(null);
    setAdded(null);
    try {
      setAdded(must(await api.POST('/v1/admin/users', { body: { username: username.trim(), role } })) as AddedUser);
      setUsername('');
      onAdded();
    } catch (err) {
      setProblem(asProblem(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <form className="filters" onSubmit={submit} aria-label="Add a user">
        <Field id="nu-username" label="User name" error={problem}>
          {(a) => <input {...a} value={username} onChange={(e) => setUsername(e.target.value)} autoComplete="off" required />}
        </Field>
        <Field id="nu-role" label="Role">
          {(a) => (
            <select {...a} value={role} onChange={(e) => setRole(e.target.value)}>
              {ROLES.map((r) => (
                <option key={r}>{r}</option>
              ))}
            </select>
          )}
        </Field>
        <button type="submit" disabled={busy || !username.trim()}>
          Add user
        </button>
      </form>
      {added ? (
        <p role="status" className="notice" data-testid="one-time-password">
          Added {added.user.username} ({added.user.role}). One-time password: <code>{added.one_time_password}</code>. It is shown only now; they must
          choose their own at the first sign-in.
        </p>
      ) : null}
    </>
  );
}

export default function Admin() {
  const { me } = useAuth();
  const users = useLoad(async () => must(await api.GET('/v1/admin/users')) as User[], []);
  const clients = useLoad(async () => must(await api.GET('/v1/admin/clients')) as Client[], []);
  const [problem, setProblem] = useState<Problem | null>(null);
  const act = async (work: () => Promise<unknown>, reload: () => void) => {
    setProblem(null);
    try {
      await work();
      reload();
    } catch (e) {
      setProblem(asProblem(e));
    }
  };
  const setEnabled = (u: User, enabled: boolean) =>
    act(async () => must(await api.PUT('/v1/admin/users/{username}/enabled', { params: { path: { username: u.username } }, body: { enabled } })), users.reload);
  const remove = (c: Client) => {
    if (!window.confirm(`Remove client ${c.client_id}? Every token it holds stops working.`)) return;
    void act(async () => {
      const r = await api.DELETE('/v1/admin/clients/{client_id}', { params: { path: { client_id: c.client_id } } });
      if (r.error) must(r);
    }, clients.reload);
  };
  return (
    <>
      <h1>Admin</h1>
      <ProblemMessage problem={problem} />
      <Section title="Users">
        <AddUserForm onAdded={users.reload} />
        <LoadState state={users}>
          {(rows) => (
            <Table
              caption="User accounts"
              testId="users-table"
              rows={rows}
              rowKey={(u) => u.id}
              columns={[
                { key: 'username', header: 'User' },
                { key: 'role', header: 'Role' },
                { key: 'enabled', header: 'Enabled', render: (u) => <StatusBadge status={u.enabled ? 'enabled' : 'disabled'} /> },
                { key: 'must_change_password', header: 'Must change password' },
                { key: 'created_ms', header: 'Created', render: (u) => fmtTime(u.created_ms) },
                {
                  key: 'action',
                  header: 'Access',
                  sortable: false,
                  render: (u) =>
                    u.username === me?.username ? (
                      <span className="muted">you</span>
                    ) : (
                      <button type="button" onClick={() => void setEnabled(u, !u.enabled)} aria-label={`${u.enabled ? 'Disable' : 'Enable'} ${u.username}`}>
                        {u.enabled ? 'Disable' : 'Enable'}
                      </button>
                    ),
                },
              ]}
            />
          )}
        </LoadState>
      </Section>
      <Section title="OAuth clients">
        <LoadState state={clients}>
          {(rows) => (
            <Table
              caption="Registered OAuth clients"
              testId="clients-table"
              rows={rows}
              rowKey={(c) => c.client_id}
              columns={[
                { key: 'client_id', header: 'Client id', render: (c) => <code>{c.client_id}</code> },
                { key: 'name', header: 'Name' },
                { key: 'public', header: 'Type', value: (c) => (c.public ? 'public' : 'confidential') },
                { key: 'grant_types', header: 'Grants', value: (c) => c.grant_types.join(', ') },
                { key: 'scopes', header: 'Scopes' },
                { key: 'redirect_uris', header: 'Redirect URIs', value: (c) => c.redirect_uris.join(' ') },
                { key: 'created_ms', header: 'Created', render: (c) => fmtTime(c.created_ms) },
                {
                  key: 'remove',
                  header: 'Remove',
                  sortable: false,
                  render: (c) =>
                    c.client_id === 'tradelab-dashboard' ? (
                      <span className="muted">this dashboard</span>
                    ) : (
                      <button type="button" onClick={() => remove(c)} aria-label={`Remove client ${c.client_id}`}>
                        Remove
                      </button>
                    ),
                },
              ]}
            />
          )}
        </LoadState>
      </Section>
    </>
  );
}
