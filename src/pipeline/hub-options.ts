/** Hub access settings, read from the environment at the CLI edge and passed down. */
export interface HubOptions {
  hubUrl?: string;
  accessToken?: string;
  offline?: boolean;
}
