// Type and range checks of Docker's request bodies, before anything else looks at them: a hand-made or broken
// request (Pool as a number, V6 as "true", a field of 100 kB) is refused with PLUGIN_REQUEST_INVALID naming
// the call, the field, the value (clipped) and what would be valid, instead of being read as a default or
// failing deep inside with INTERNAL. Field names and types are Docker's (docs/plugin-protocol.md).
import * as path from 'node:path';
import { clip, MacnetError } from '../errors';

type Body = Record<string, unknown>;

/** Longest string field taken (ids are 64 characters, CIDRs and paths less than this). */
const MAX_FIELD_CHARS = 4096;

function bad(call: string, field: string, want: string, got: unknown): MacnetError {
  return new MacnetError('PLUGIN_REQUEST_INVALID', `${call}: field ${field} must be ${want}, got ${clip(got)}`, {
    call,
    field,
    value: clip(got),
  });
}

const absent = (v: unknown) => v === undefined || v === null;

/** A string field: required ones non-empty; at most MAX_FIELD_CHARS and without NUL bytes. */
export function str(
  body: Body,
  field: string,
  call: string,
  required = true,
  what = 'a string',
  label = field,
): string {
  const v = body[field];
  if (!required && absent(v)) return '';
  const want = `${required ? 'a non-empty ' : ''}${what}`;
  if (typeof v !== 'string' || (required && v === '') || v.length > MAX_FIELD_CHARS || v.includes('\0')) {
    throw bad(call, label, `${want} (at most ${MAX_FIELD_CHARS} characters, no NUL byte)`, v);
  }
  return v;
}

/** A boolean field; absent: false. Docker sends JSON booleans here. */
export function bool(body: Body, field: string, call: string): boolean {
  const v = body[field];
  if (absent(v)) return false;
  if (typeof v !== 'boolean') throw bad(call, field, 'true or false (a JSON boolean, not a string)', v);
  return v;
}

/** An object field whose values are all strings (Docker's map[string]string); absent: {}. */
export function stringMap(body: Body, field: string, call: string): Record<string, string> {
  const v = body[field];
  if (absent(v)) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw bad(call, field, 'an object of string values', v);
  for (const [k, x] of Object.entries(v as Body)) {
    if (typeof x !== 'string' || x.length > MAX_FIELD_CHARS) throw bad(call, `${field}.${k}`, 'a string', x);
  }
  return v as Record<string, string>;
}

/** CreateEndpoint's Interface: an object of optional strings (Address, AddressIPv6, MacAddress). */
export function iface(body: Body, call: string): Record<string, string> {
  const v = body.Interface;
  if (absent(v)) return {};
  if (typeof v !== 'object' || Array.isArray(v)) {
    throw bad(call, 'Interface', 'an object (Address, AddressIPv6, MacAddress)', v);
  }
  const out: Record<string, string> = {};
  for (const k of ['Address', 'AddressIPv6', 'MacAddress']) {
    const x = (v as Body)[k];
    if (absent(x)) continue;
    if (typeof x !== 'string' || x.length > 100) throw bad(call, `Interface.${k}`, 'a string', x);
    out[k] = x;
  }
  return out;
}

/**
 * Join's SandboxKey: an absolute path (dockerd's /var/run/docker/netns/<id>). With `netnsDir` (the daemon's
 * --netns-dir: a managed plugin sees dockerd's netns dir at another path) the same file name in that directory.
 */
export function sandboxKey(body: Body, call: string, netnsDir?: string): string {
  const v = str(body, 'SandboxKey', call, true, 'an absolute path');
  if (!v.startsWith('/')) throw bad(call, 'SandboxKey', 'an absolute path (dockerd sends /var/run/docker/netns/ID)', v);
  if (netnsDir === undefined) return v;
  const name = path.posix.basename(v);
  if (!/^[\w.-]+$/.test(name) || name === '.' || name === '..')
    throw bad(call, 'SandboxKey', 'a path ending in a file name (dockerd sends /var/run/docker/netns/ID)', v);
  return path.posix.join(netnsDir, name);
}

/**
 * CreateNetwork's body: Options an object (its generic options an object of strings, numbers or booleans),
 * IPv4Data and IPv6Data lists of objects with string Pool, Gateway, AddressSpace and string-valued
 * AuxAddresses. Values are checked for meaning later (config.ts); here only their shape.
 */
export function checkCreateNetwork(body: Body): void {
  const call = 'CreateNetwork';
  const opts = body.Options;
  if (!absent(opts)) {
    if (typeof opts !== 'object' || Array.isArray(opts)) throw bad(call, 'Options', 'an object', opts);
    const generic = (opts as Body)['com.docker.network.generic'];
    if (!absent(generic) && (typeof generic !== 'object' || Array.isArray(generic))) {
      throw bad(call, 'Options["com.docker.network.generic"]', 'an object of option values (-o key=value)', generic);
    }
  }
  for (const fam of ['IPv4Data', 'IPv6Data']) {
    const list = body[fam];
    if (absent(list)) continue;
    if (!Array.isArray(list)) throw bad(call, fam, 'a list of objects (Pool, Gateway, AuxAddresses)', list);
    list.forEach((d: unknown, i) => {
      const at = `${fam}[${i}]`;
      if (typeof d !== 'object' || d === null || Array.isArray(d)) {
        throw bad(call, at, 'an object (Pool, Gateway, AuxAddresses)', d);
      }
      const o = d as Body;
      str(o, 'Pool', call, true, 'a CIDR string', `${at}.Pool`);
      for (const f of ['Gateway', 'AddressSpace']) str(o, f, call, false, 'a string', `${at}.${f}`);
      const aux = o.AuxAddresses;
      if (absent(aux)) return;
      if (typeof aux !== 'object' || Array.isArray(aux)) {
        throw bad(call, `${at}.AuxAddresses`, 'an object of name: address', aux);
      }
      for (const [k, a] of Object.entries(aux as Body)) {
        if (typeof a !== 'string') throw bad(call, `${at}.AuxAddresses.${k}`, 'an address string', a);
      }
    });
  }
}
