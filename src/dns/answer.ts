// What macnet's DNS server answers, as pure logic: a query's bytes in, a reply's bytes out, or "forward" for a name
// that is not one of ours (the server sends those to the host's resolvers, forward.ts). The names themselves come
// from a NameTable the caller keeps (the containers of every host, docs/names.md).
//
// Ours are: each container name and network alias, bare (`web`) and with its host (`web.<host>`), and the reverse
// names (in-addr.arpa, ip6.arpa) of their addresses; and every name under a host's label (its zone: a name there
// that no container has is NXDOMAIN, never forwarded). For one of ours the reply is authoritative, with every address
// the name has on any host (a name used on two hosts answers with both), TTL_S seconds, and NOERROR without
// answers for a record type we do not hold (so a resolver asking AAAA for an IPv4-only container does not go on to
// other servers and wait).
import * as packet from 'dns-packet';
import { bytesToIp } from '../types/address';

/** Short: a removed or moved container must stop resolving within seconds; caches hold it at most this long. */
export const TTL_S = 5;

export interface NameTable {
  /** The addresses a name (lower case, no trailing dot) stands for; undefined if the name is not ours. */
  addresses(name: string): { readonly v4: readonly string[]; readonly v6: readonly string[] } | undefined;
  /** The names an address stands for (PTR), first the one to prefer; empty if the address is not ours. */
  names(address: string): readonly string[];
  /** Whether `label` is a host label (`<name>.<label>`): a zone of ours, where a name no record has does not exist. */
  isZone(label: string): boolean;
}

export type Outcome = { readonly reply: Buffer } | { readonly forward: true };

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4 } as const;

/** The reply to `query`, or forward. A message we cannot read gets FORMERR when it has at least a header. */
export function answer(query: Buffer, table: NameTable): Outcome {
  let q: packet.DecodedPacket;
  try {
    q = packet.decode(query);
  } catch {
    return query.length >= 12 ? { reply: bare(query.readUInt16BE(0), RCODE.FORMERR) } : { reply: Buffer.alloc(0) };
  }
  const id = q.id ?? 0;
  const rd = q.flag_rd ? packet.RECURSION_DESIRED : 0;
  if (q.type !== 'query' || (q.questions?.length ?? 0) !== 1) return { reply: reply(id, rd, RCODE.FORMERR, q) };
  const question = q.questions![0]!;
  const name = question.name.toLowerCase().replace(/\.$/, '');
  const ptr = reverseAddress(name);
  if (ptr !== undefined) {
    const names = table.names(ptr);
    if (names.length === 0) return { forward: true };
    if (question.type !== 'PTR' && (question.type as string) !== 'ANY') return { reply: reply(id, rd, 0, q) };
    return {
      reply: reply(id, rd, 0, q, [{ type: 'PTR', name: question.name, ttl: TTL_S, class: 'IN', data: names[0]! }]),
    };
  }
  const found = table.addresses(name);
  if (!found) {
    // `<name>.<host label>` is ours to deny: forwarded, it would cost a client the upstream's timeout (a removed
    // container's host-qualified name, seen at 5 s when the upstream did not answer).
    const dot = name.lastIndexOf('.');
    return dot > 0 && table.isZone(name.slice(dot + 1))
      ? { reply: reply(id, rd, RCODE.NXDOMAIN, q) }
      : { forward: true };
  }
  const wantA = question.type === 'A' || (question.type as string) === 'ANY';
  const wantAAAA = question.type === 'AAAA' || (question.type as string) === 'ANY';
  const answers: packet.Answer[] = [
    ...(wantA
      ? found.v4.map((a) => ({ type: 'A' as const, name: question.name, ttl: TTL_S, class: 'IN' as const, data: a }))
      : []),
    ...(wantAAAA
      ? found.v6.map((a) => ({ type: 'AAAA' as const, name: question.name, ttl: TTL_S, class: 'IN' as const, data: a }))
      : []),
  ];
  return { reply: reply(id, rd, 0, q, answers) };
}

/** A reply to a forwarded query that no upstream answered. */
export function servfail(query: Buffer): Buffer {
  try {
    const q = packet.decode(query);
    return reply(q.id ?? 0, q.flag_rd ? packet.RECURSION_DESIRED : 0, RCODE.SERVFAIL, q);
  } catch {
    return query.length >= 12 ? bare(query.readUInt16BE(0), RCODE.SERVFAIL) : Buffer.alloc(0);
  }
}

function reply(id: number, rd: number, rcode: number, q: packet.DecodedPacket, answers: packet.Answer[] = []): Buffer {
  return packet.encode({
    type: 'response',
    id,
    flags: packet.AUTHORITATIVE_ANSWER | packet.RECURSION_AVAILABLE | rd | rcode,
    questions: q.questions ?? [],
    answers,
  });
}

/** A header only (the question could not be read): id, QR, the rcode. */
function bare(id: number, rcode: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(id, 0);
  b.writeUInt16BE(0x8000 | rcode, 2);
  return b;
}

/** The address a reverse name (in-addr.arpa, ip6.arpa) stands for, in its usual text form; undefined otherwise. */
export function reverseAddress(name: string): string | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.in-addr\.arpa$/.exec(name);
  if (v4) {
    const parts = v4.slice(1, 5).reverse().map(Number);
    return parts.every((p) => p <= 255) ? parts.join('.') : undefined;
  }
  const v6 = /^((?:[0-9a-f]\.){32})ip6\.arpa$/.exec(name);
  if (!v6) return undefined;
  const hex = v6[1]!.split('.').filter(Boolean).reverse().join('');
  return bytesToIp(Buffer.from(hex, 'hex'));
}
