// A FrameSocket for the prober's tests: records what is sent, and feeds frames as the kernel would deliver them.
import { EventEmitter } from 'node:events';
import type { FrameSocket } from '../../src/types/socket';

export class FakeSocket extends EventEmitter implements FrameSocket {
  sent: { data: Buffer; dst: string }[] = [];
  send(data: Buffer, dst: string) {
    this.sent.push({ data, dst });
  }
  feed(data: Buffer, srcMac: string, pktType = 1) {
    this.emit('packet', { data, srcMac, pktType });
  }
  close() {}
}
