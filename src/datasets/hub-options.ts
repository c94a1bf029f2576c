/** What the CLI edge reads from the environment for hub access; library code takes these as parameters. */
export interface HubOptions {
  hubUrl?: string;
  accessToken?: string;
  offline: boolean;
}

const TRUTHY = new Set(['1', 'true', 'yes', 'on']);

/**
 * Read HF_TOKEN (or the older HUGGING_FACE_HUB_TOKEN), HF_HUB_OFFLINE and HF_ENDPOINT the way huggingface_hub does.
 * Call it once at the CLI edge: `loadTextRows(id, { ...hubOptionsFromEnv(process.env), rows })`.
 */
export function hubOptionsFromEnv(env: Record<string, string | undefined>): HubOptions {
  const options: HubOptions = { offline: TRUTHY.has((env.HF_HUB_OFFLINE ?? '').trim().toLowerCase()) };
  const token = (env.HF_TOKEN ?? env.HUGGING_FACE_HUB_TOKEN)?.trim();
  if (token) options.accessToken = token;
  const endpoint = env.HF_ENDPOINT?.trim();
  if (endpoint) options.hubUrl = endpoint.replace(/\/+$/, '');
  return options;
}
