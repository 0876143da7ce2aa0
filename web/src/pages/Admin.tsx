import { api, must } from '../api/client';
import type { Client, User } from '../api/types';
import { LoadState, Section, StatusBadge } from '../components/Bits';
import { Table } from '../components/Table';
import { fmtTime } from '../lib/format';
import { useLoad } from '../lib/useLoad';

export default function Admin() {
  const users = useLoad(async () => must(await api.GET('/v1/admin/users')) as User[], []);
  const clients = useLoad(async () => must(await api.GET('/v1/admin/clients')) as Client[], []);
  return (
    <>
      <h1>Admin</h1>
      <Section title="Users">
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
              ]}
            />
          )}
        </LoadState>
      </Section>
    </>
  );
}
