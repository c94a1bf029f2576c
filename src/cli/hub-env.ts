import type { HubOptions } from '../pipeline/hub-options.js';

/** The CLI edge is the only place that reads HF_TOKEN, HF_ENDPOINT and HF_HUB_OFFLINE. */
export function hubOptionsFromProcessEnv(env: NodeJS.ProcessEnv = process.env): HubOptions {
  const offline = ['1', 'true', 'yes', 'on'].includes((env.HF_HUB_OFFLINE ?? '').toLowerCase());
  return {
    ...(env.HF_ENDPOINT ? { hubUrl: env.HF_ENDPOINT } : {}),
    ...(env.HF_TOKEN ? { accessToken: env.HF_TOKEN } : {}),
    offline,
  };
}
