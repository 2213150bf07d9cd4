// Quoting input in messages: a value from a request or the command line is clipped, never echoed whole.

/** The most characters of one input value that a message or a log line quotes. */
export const CLIP_CHARS = 200;

/**
 * A value as a message quotes it: JSON, cut to CLIP_CHARS with the full length named, so that a hostile or
 * broken request (a 100 kB field) is never echoed whole into a reply or the log.
 */
export function clip(value: unknown, max = CLIP_CHARS): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}

/** Cuts a finished message (a reply's Err, a log field) to `max` characters: the backstop behind clip(). */
export function clipText(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (cut, ${text.length} characters)`;
}
