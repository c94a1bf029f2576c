/**
 * Keeps the API key out of everything a run writes or prints. The key is read from the environment when the
 * backend starts and lives only in the client's Authorization header; a server may still echo it back (OpenAI's
 * 401 names the key it got, a proxy may reflect headers), so every message, log line and recorded header value
 * from the backend passes `redact` first.
 */
export const REDACTED = '[redacted]';

export class Redactor {
  private readonly secrets: string[];

  constructor(secrets: readonly (string | undefined)[]) {
    // Longest first, so a secret that contains another is replaced whole. Very short values are not secrets worth
    // hunting for (and would shred ordinary text).
    this.secrets = [...new Set(secrets.filter((secret): secret is string => typeof secret === 'string' && secret.length >= 4))].sort(
      (a, b) => b.length - a.length,
    );
  }

  redact(text: string): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join(REDACTED);
    // A server quoting the key it got often masks its middle (sk-abc***wxyz); its visible ends are still the key's.
    for (const secret of this.secrets) {
      if (secret.length < 12) continue;
      const head = escapeRegExp(secret.slice(0, 6));
      const tail = escapeRegExp(secret.slice(-4));
      out = out.replace(new RegExp(`${head}[^\\s"']*${tail}`, 'g'), REDACTED);
    }
    return out;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
