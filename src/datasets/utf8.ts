const fatalDecoder = new TextDecoder('utf-8', { fatal: true });

/** Decode bytes as UTF-8, or return undefined when they are not valid UTF-8 (never silently replaced). */
export function decodeUtf8Strict(bytes: Uint8Array): string | undefined {
  try {
    return fatalDecoder.decode(bytes);
  } catch {
    return undefined;
  }
}

export const UTF8_HINT = 're-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 in > out`) or pick another --text-field';
