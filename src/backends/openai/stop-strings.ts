/**
 * Stop strings applied on our side, exactly as the engine applies them (generation.py `_find_stop`): the
 * completion is cut at the earliest occurrence of any stop string in it; at the same position the first string
 * in the list wins. Servers differ in how they apply `stop` (some not at all, some leave the string in, OpenAI
 * takes at most four), so every completion passes through here whatever the server did.
 */
export interface StopHit {
  at: number;
  stop: string;
}

export function findStop(text: string, stops: readonly string[]): StopHit | undefined {
  let best: StopHit | undefined;
  for (const stop of stops) {
    const at = text.indexOf(stop);
    if (at >= 0 && (best === undefined || at < best.at)) best = { at, stop };
  }
  return best;
}

/** The text cut at its first stop string, and the string that cut it (null when none occurs). */
export function cutAtStop(text: string, stops: readonly string[]): { text: string; stop: string | null } {
  const hit = stops.length > 0 ? findStop(text, stops) : undefined;
  return hit ? { text: text.slice(0, hit.at), stop: hit.stop } : { text, stop: null };
}
