// Polling for a condition that a background task makes true (a settle every second, a watch): no timing assert, a
// bound after which the caller's own assertion reports what did not happen.

/** Polls `cond` every 50 ms for up to `ms`; whether it became true. */
export async function until(cond: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}
