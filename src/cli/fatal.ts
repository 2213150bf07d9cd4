// What survives and what ends the daemon (docs/driver.md, "Fatal errors").
//
// Survives: anything a call's handler throws or rejects with (the call is refused, with INTERNAL when it was
// not one of macnet's own errors) and background work that catches its own errors (repairs, announcements).
// Ends it: an exception or rejection that reaches the process, since no one knows what it left half done. The
// daemon then logs one JSON line (level error, msg "fatal: ...", the error and its stack), removes its own
// socket (so dockerd fails fast instead of timing out) and exits 70 (EX_SOFTWARE) at once, for the
// supervisor (systemd Restart=on-failure, Docker's managed plugins) to restart it. Nothing is left half
// done in the state: every store write is one SQLite transaction, and the start-up reconcile repairs the
// kernel's side (links, addresses, routes) from the records.
import type { Handler } from '../docker/server';
import type { Logger } from '../log';

export const FATAL_EXIT_CODE = 70;

/** Test-only (docs/driver.md): MACNET_TEST_FAULTS=1 at start adds the call macnet/test-fault. */
export const FAULTS_ENV = 'MACNET_TEST_FAULTS';

export function installFatalHandlers(log: Logger, cleanUp: () => void): void {
  const die = (what: string, e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    log.error(`fatal: ${what}: exiting for the supervisor to restart macnet`, {
      error: err.message,
      stack: err.stack,
      exitCode: FATAL_EXIT_CODE,
    });
    try {
      cleanUp();
    } finally {
      process.exit(FATAL_EXIT_CODE);
    }
  };
  process.on('uncaughtException', (e) => die('uncaught exception', e));
  process.on('unhandledRejection', (e) => die('unhandled rejection', e));
}

/**
 * Node's own warnings (MaxListenersExceededWarning, deprecations) as JSON log lines: its default listener
 * writes "(node:PID) Warning: ..." to stderr, which is not JSON.
 */
export function jsonWarnings(log: Logger): void {
  process.removeAllListeners('warning');
  process.on('warning', (w) => log.warn('node warning', { name: w.name, error: w.message }));
}

/** The fault-injection call, only when the test-only variable is set at start. */
export function addFaultHook(h: Map<string, Handler>, log: Logger): void {
  if (process.env[FAULTS_ENV] !== '1') return;
  log.warn(`${FAULTS_ENV}=1: the test-only call macnet/test-fault is enabled; never set this in production`);
  h.set('macnet/test-fault', async (b) => {
    const fault = new Error(`injected fault (${FAULTS_ENV}): ${b.kind === 'reject' ? 'rejection' : 'exception'}`);
    // After the reply: the fault must reach the process, not the call's own error handling.
    setTimeout(() => {
      if (b.kind === 'reject') void Promise.reject(fault);
      else throw fault;
    }, 20);
    return {};
  });
}
