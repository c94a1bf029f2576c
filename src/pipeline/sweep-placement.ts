import { engineLabels } from './engines/engine-devices.js';

/** A place a sweep runs configurations on: some of its --devices entries, and those engines' names. */
export interface DeviceSlot {
  devices: string[];
  labels: string[];
}

/**
 * How `sweep --devices` spreads its configurations: one slot per --devices entry when there are at least as many
 * configurations as entries (each configuration runs on one engine; the configurations wait in one queue and each
 * slot takes the next when it is free), else as many slots as configurations, the entries cut into contiguous
 * groups as even as they go (4 GPUs, 2 configurations: 0,1 and 2,3; each configuration's engines share its stages'
 * queue). Undefined when there is nothing to place: one configuration, or fewer than two entries.
 */
export function deviceSlots(devices: readonly string[] | undefined, configurations: number): DeviceSlot[] | undefined {
  if (devices === undefined || devices.length < 2 || configurations < 2) return undefined;
  const labels = engineLabels(devices);
  const count = Math.min(devices.length, configurations);
  const slots: DeviceSlot[] = [];
  let start = 0;
  for (let slot = 0; slot < count; slot += 1) {
    const size = Math.floor(devices.length / count) + (slot < devices.length % count ? 1 : 0);
    slots.push({ devices: devices.slice(start, start + size), labels: labels.slice(start, start + size) });
    start += size;
  }
  return slots;
}
