// Netlink message framing (struct nlmsghdr) and the kernel's error/ack replies with extended-ack text.
import { type Attr, align4, encodeAttrs, encodedLength, getStr, parseAttrs } from './attrs';
import {
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSGERR_ATTR_MSG,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLMSG_NOOP,
} from './constants';

export interface NlMessage {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly pid: number;
  /** The payload after the 16-byte header. */
  readonly body: Buffer;
}

/** Builds one request: header, the fixed-size family struct (already encoded), then the attributes. */
export function encodeMessage(
  type: number,
  flags: number,
  seq: number,
  fixed: Buffer,
  attrs: readonly Attr[] = [],
): Buffer {
  const len = NLMSG_HDRLEN + align4(fixed.length) + encodedLength(attrs);
  const buf = Buffer.alloc(len);
  buf.writeUInt32LE(len, 0);
  buf.writeUInt16LE(type, 4);
  buf.writeUInt16LE(flags, 6);
  buf.writeUInt32LE(seq >>> 0, 8);
  buf.writeUInt32LE(0, 12); // port id 0: the kernel fills in the sender's
  fixed.copy(buf, NLMSG_HDRLEN);
  encodeAttrs(attrs, buf, NLMSG_HDRLEN + align4(fixed.length));
  return buf;
}

/** Splits a datagram (or several concatenated) into messages. Truncated tails are ignored. */
export function decodeMessages(buf: Buffer): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) break;
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      body: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

export interface NlAck {
  /** 0 for a plain acknowledgement, otherwise a positive errno. */
  readonly errno: number;
  /** The kernel's extended-ack message (NLMSGERR_ATTR_MSG), when it gave one. */
  readonly extack?: string;
}

/** Decodes struct nlmsgerr: a negative errno, the echoed request header (and body unless capped), TLVs. */
export function decodeError(msg: NlMessage): NlAck {
  const errno = 0 - msg.body.readInt32LE(0); // not unary minus: -0 would not equal 0
  let off = 4;
  if (msg.body.length >= off + NLMSG_HDRLEN) {
    const echoedLen = msg.body.readUInt32LE(off);
    off += msg.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : align4(echoedLen);
  }
  if (msg.flags & NLM_F_ACK_TLVS && off < msg.body.length) {
    const tlvs = parseAttrs(msg.body, off);
    const extack = getStr(tlvs, NLMSGERR_ATTR_MSG);
    if (extack) return { errno, extack };
  }
  return { errno };
}

export interface Reply {
  /** Data messages (RTM_NEW* answers to a get or a dump). */
  readonly messages: NlMessage[];
  readonly ack?: NlAck;
}

/** Sorts a request's replies into data messages and the final error/ack. */
export function splitReply(buf: Buffer): Reply {
  const messages: NlMessage[] = [];
  let ack: NlAck | undefined;
  for (const m of decodeMessages(buf)) {
    if (m.type === NLMSG_ERROR) ack = decodeError(m);
    else if (m.type === NLMSG_DONE) {
      // A dump that failed half-way reports the error as an int after NLMSG_DONE.
      if (m.body.length >= 4 && m.body.readInt32LE(0) < 0) ack = { errno: -m.body.readInt32LE(0) };
    } else if (m.type !== NLMSG_NOOP) messages.push(m);
  }
  return ack ? { messages, ack } : { messages };
}
