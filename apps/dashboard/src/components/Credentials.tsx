import { useState, type FormEvent } from 'react';
import { store, useDash } from '../instance';

/**
 * Credentials (admin): onboard a hospital without a shell on the coordinator's database — create
 * its token (shown once, with the portal link to hand over), list the stored ones, revoke one
 * (its connections close at once). Tokens from the environment are not listed here.
 */
export function CredentialsPanel() {
  const tokens = useDash((s) => s.tokens);
  const error = useDash((s) => s.tokenError);
  const notice = useDash((s) => s.tokenNotice);
  const created = useDash((s) => s.newToken);
  const [hospital, setHospital] = useState('');
  const onCreate = (e: FormEvent) => {
    e.preventDefault();
    if (hospital.trim()) void store.getState().createHospitalToken(hospital);
  };
  const portal = created?.hospital_id ? `${location.origin}${location.pathname.replace(/\/dashboard\/?$/, '')}/hospital/?hospital=${encodeURIComponent(created.hospital_id)}` : undefined;
  return (
    <section className="wide" aria-label="Credentials">
      <h2>
        Credentials (admin){' '}
        <button type="button" onClick={() => void store.getState().loadTokens()}>
          {tokens ? 'Refresh' : 'Show'}
        </button>
      </h2>
      <form className="row" onSubmit={onCreate}>
        <label>
          Hospital id
          <input value={hospital} onChange={(e) => setHospital(e.target.value)} placeholder="H5" autoComplete="off" />
        </label>
        <button type="submit">Create hospital token</button>
      </form>
      {error && <p className="error">{error}</p>}
      {notice && <p className="ok">{notice}</p>}
      {created && (
        <div aria-label="New token" className="alarm warning">
          <p>
            Token for {created.hospital_id ?? created.role} ({created.token_id}) — copy it now, it is not shown again:
          </p>
          <output data-testid="new-token">{created.token}</output>
          {portal && (
            <p>
              Portal: <a href={portal}>{portal}</a>
            </p>
          )}
          <button type="button" onClick={() => store.getState().dismissNewToken()}>
            Done
          </button>
        </div>
      )}
      {tokens &&
        (tokens.length === 0 ? (
          <p className="muted">No stored tokens (tokens from the environment are not listed).</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Token id</th>
                <th>Role</th>
                <th>Hospital</th>
                <th>Created</th>
                <th>Revoked</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {tokens.map((t) => (
                <tr key={t.token_id}>
                  <td>{t.token_id}</td>
                  <td>{t.role}</td>
                  <td>{t.hospital_id ?? '—'}</td>
                  <td>{t.created_at}</td>
                  <td>{t.revoked_at ?? '—'}</td>
                  <td>
                    {!t.revoked_at && (
                      <button type="button" aria-label={`Revoke ${t.token_id}`} onClick={() => void store.getState().revokeToken(t.token_id)}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ))}
    </section>
  );
}
