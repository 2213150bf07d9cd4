// `test` for Docker tests: node:test's, with the engine and its version in front of every name
// ("[docker 28.5.2] ..."). test/run.js runs each file that imports this module once per engine (MACNET_ENGINE),
// so the same test appears once for each engine in the output and its counts.
import { describe as nodeDescribe, test as nodeTest } from 'node:test';
import { engine, selectedEngineId } from './engines';

const selected = engine();
/** The engine of this run, or why it cannot run (the lab then refuses, and the tests say so). */
export const ENGINE = selected;
export const ENGINE_LABEL = typeof selected === 'string' ? `docker ${selectedEngineId()}: missing` : selected.label;

/** A test name with the engine in front. */
export const named = (name: string): string => `[${ENGINE_LABEL}] ${name}`;

export const test = ((name: string, ...rest: unknown[]) =>
  (nodeTest as (...a: unknown[]) => Promise<void>)(named(name), ...rest)) as unknown as typeof nodeTest;

export const describe = ((name: string, ...rest: unknown[]) =>
  (nodeDescribe as (...a: unknown[]) => Promise<void>)(named(name), ...rest)) as unknown as typeof nodeDescribe;
