import { canonicalJson, differingFields } from '../../util/canonical-json.js';
import { configIdentity } from '../run-config.js';
import type { Manifest } from '../store/manifest.js';

/** Where two shards' manifests first disagree: the dotted field and each side's value. */
export interface Disagreement {
  field: string;
  first: unknown;
  other: unknown;
}

/**
 * The facts every shard of one run must share, in the order they are checked: how the units were cut, what the run
 * is (the config), the code that did the work (evalpipe and task versions), the model (weights, revision, mode) and
 * the data (each data set's content hash), then the engine's and the sandbox's versions. A fact only one side
 * recorded (a shard whose share needed no engine has no engine versions) is not compared.
 */
function facts(manifest: Manifest): [string, unknown][] {
  const shard = manifest.shard;
  const list: [string, unknown][] = [
    ['shard.scheme', shard?.scheme],
    ['shard.count', shard?.count],
    ['config_hash', manifest.config_hash],
    ['tool.version', manifest.tool.version],
  ];
  for (const [task, version] of Object.entries(shard?.task_versions ?? {})) list.push([`shard.task_versions.${task}`, version]);
  const model = manifest.model;
  list.push(
    ['model.weights_sha256', model?.weights_sha256],
    ['model.revision', model?.revision],
    ['model.deterministic', model?.deterministic],
    ['model.dtype', model?.dtype],
  );
  for (const [name, dataset] of Object.entries(manifest.datasets)) list.push([`datasets.${name}.contentSha256`, dataset.contentSha256]);
  list.push(
    ['engine.engine_version', manifest.engine?.engine_version],
    ['engine.torch', manifest.engine?.torch],
    ['engine.transformers', manifest.engine?.transformers],
    ['engine.triton', manifest.engine?.triton],
    ['sandbox.image_id', manifest.sandbox?.image_id],
  );
  return list;
}

/** The first fact on which `other` disagrees with `first` (config differences named by their config field). */
export function firstDisagreement(first: Manifest, other: Manifest): Disagreement | undefined {
  const theirs = new Map(facts(other));
  for (const [field, value] of facts(first)) {
    if (!theirs.has(field)) continue;
    const otherValue = theirs.get(field);
    if (value === undefined || value === null || otherValue === undefined || otherValue === null) {
      if (field.startsWith('shard.') && value !== otherValue) return { field, first: value, other: otherValue };
      continue;
    }
    if (canonicalJson(value) === canonicalJson(otherValue)) continue;
    if (field === 'config_hash') {
      const configField = differingFields(configIdentity(first.config), configIdentity(other.config))[0];
      if (configField) {
        const pick = (config: unknown) => configField.split('.').reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], config);
        return { field: `config.${configField}`, first: pick(first.config), other: pick(other.config) };
      }
    }
    return { field, first: value, other: otherValue };
  }
  return undefined;
}

/** A value as a disagreement line shows it: JSON, long hashes cut to 16 characters. */
export function shortValue(value: unknown): string {
  const text = value === undefined ? 'nothing' : JSON.stringify(value);
  return /^"[0-9a-f]{40,}"$/.test(text) ? `${text.slice(0, 17)}…"` : text;
}
