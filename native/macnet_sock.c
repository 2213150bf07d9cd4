// macnet_sock: the smallest native piece macnet needs.
//
// Node cannot open a netlink or packet socket, nor one inside another network namespace. This addon does
// exactly that and nothing more; message encoding and decoding live in TypeScript (src/kernel/nl).
//
// Why setns on the calling thread: a socket stays bound to the namespace it was created in (lab.md), so
// setns(target) -> socket() -> setns(back) gives a socket in any namespace for about 0.1 ms, without a
// child process. setns affects only the calling thread, and this thread runs no JS while it is away.
//
// Why requests run on the libuv thread pool: the kernel handles an rtnetlink request synchronously inside
// sendmsg() under the RTNL lock; deleting a link takes 16-24 ms and may wait on a lock dockerd holds. Doing
// send+receive in a worker keeps the event loop free. Each socket must have at most one request in flight;
// src/kernel/nl/socket.ts queues them.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <net/ethernet.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <node_api.h>
#include <uv.h>

#define RECV_BUF (64 * 1024)

#define NAPI_CALL(env, call)                                              \
  do {                                                                    \
    if ((call) != napi_ok) {                                              \
      napi_throw_error((env), "EINTERNAL", "N-API call failed: " #call); \
      return NULL;                                                        \
    }                                                                     \
  } while (0)

static napi_value make_errno_error(napi_env env, int err, const char *what) {
  const char *name = strerrorname_np(err);
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s: %s", what, name ? name : "E?", strerror(err));
  napi_value code, message, error, errnum;
  napi_create_string_utf8(env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &error);
  napi_create_int32(env, err, &errnum);
  napi_set_named_property(env, error, "errno", errnum);
  return error;
}

static napi_value throw_errno(napi_env env, int err, const char *what) {
  napi_throw(env, make_errno_error(env, err, what));
  return NULL;
}

static int get_i32(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok ? 0 : -1;
}

// Reads a namespace path argument: 1 with the path in `path`, 0 for null/undefined/"" (the thread's own
// namespace), -1 with an exception pending. A path that does not fit is refused, never cut: a cut path can
// name another file that exists (a padded "/////proc/self/ns/net..." would open the caller's own namespace).
static int get_ns_path(napi_env env, napi_value v, char *path, size_t size) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) {
    napi_throw_error(env, "EINTERNAL", "N-API call failed: napi_typeof");
    return -1;
  }
  if (t != napi_string) return 0;
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
    napi_throw_error(env, "EINTERNAL", "N-API call failed: napi_get_value_string_utf8");
    return -1;
  }
  if (len >= size) {
    throw_errno(env, ENAMETOOLONG, "network namespace path");
    return -1;
  }
  if (napi_get_value_string_utf8(env, v, path, size, &len) != napi_ok) {
    napi_throw_error(env, "EINTERNAL", "N-API call failed: napi_get_value_string_utf8");
    return -1;
  }
  return len > 0;
}

// A new fd as a JS number; closed again if even that fails, so that no fd leaks.
static napi_value fd_value(napi_env env, int fd) {
  napi_value out;
  if (napi_create_int32(env, fd, &out) != napi_ok) {
    close(fd);
    napi_throw_error(env, "EINTERNAL", "N-API call failed: napi_create_int32");
    return NULL;
  }
  return out;
}

typedef int (*in_ns_fn)(void *arg);

// Runs fn on this thread inside the namespace at `path`, then returns to the thread's own. Returns fn's
// result (an fd or -1 with *err set) or -1 with *err and *what set when the namespace cannot be entered.
static int run_in_ns(const char *path, in_ns_fn fn, void *arg, int *err, const char **what) {
  // O_NONBLOCK: a FIFO at the path must not block the calling (main) thread; nsfs ignores the flag.
  int target = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (target < 0) {
    *err = errno;
    *what = "open network namespace";
    return -1;
  }
  int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0) {
    *err = errno;
    *what = "open own network namespace";
    close(target);
    return -1;
  }
  if (setns(target, CLONE_NEWNET) < 0) {
    *err = errno;
    *what = "enter network namespace";
    close(target);
    close(home);
    return -1;
  }
  int r = fn(arg);
  int e = errno;
  // Failing to return would leave the main thread (and every later socket) in the wrong namespace.
  if (setns(home, CLONE_NEWNET) < 0) abort();
  close(target);
  close(home);
  if (r < 0) *err = e;
  return r;
}

typedef struct {
  int domain, type, proto;
} socket_args;

static int make_socket(void *arg) {
  socket_args *a = arg;
  return socket(a->domain, a->type | SOCK_NONBLOCK | SOCK_CLOEXEC, a->proto);
}

// openSocket(nsPath: string | null, domain, type, protocol) -> fd (non-blocking, close-on-exec)
static napi_value open_socket(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t domain, type, proto;
  if (argc < 4 || get_i32(env, argv[1], &domain) || get_i32(env, argv[2], &type) ||
      get_i32(env, argv[3], &proto)) {
    napi_throw_type_error(env, NULL, "openSocket(nsPath, domain, type, protocol)");
    return NULL;
  }
  char path[4096];
  int in_ns = get_ns_path(env, argv[0], path, sizeof path);
  if (in_ns < 0) return NULL;
  socket_args a = {domain, type, proto};
  int fd, err = 0;
  const char *what = "socket";
  if (!in_ns) {
    fd = make_socket(&a);
    err = errno;
  } else {
    fd = run_in_ns(path, make_socket, &a, &err, &what);
  }
  if (fd < 0) return throw_errno(env, err, what);
  return fd_value(env, fd);
}

typedef struct {
  const char *file;
  int flags;
} open_args;

static int open_file(void *arg) {
  open_args *a = arg;
  return open(a->file, a->flags | O_CLOEXEC | O_NOCTTY);
}

// openInNetns(nsPath, file, flags) -> fd: opens `file` from inside the namespace. For /proc/sys/net, which
// shows the namespace of the task that opens it: the fd keeps that namespace's file for later writes.
static napi_value open_in_netns(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t flags;
  char path[4096], file[4096];
  size_t flen;
  if (argc < 3 || get_i32(env, argv[2], &flags)) {
    napi_throw_type_error(env, NULL, "openInNetns(nsPath, file, flags)");
    return NULL;
  }
  int in_ns = get_ns_path(env, argv[0], path, sizeof path);
  if (in_ns < 0) return NULL;
  if (!in_ns) {
    napi_throw_type_error(env, NULL, "openInNetns: nsPath must be a path");
    return NULL;
  }
  NAPI_CALL(env, napi_get_value_string_utf8(env, argv[1], NULL, 0, &flen));
  if (flen >= sizeof file) return throw_errno(env, ENAMETOOLONG, "open");
  NAPI_CALL(env, napi_get_value_string_utf8(env, argv[1], file, sizeof file, &flen));
  open_args a = {file, flags};
  int err = 0;
  const char *what = "open";
  int fd = run_in_ns(path, open_file, &a, &err, &what);
  if (fd < 0) return throw_errno(env, err, what);
  return fd_value(env, fd);
}

// newNetns() -> fd of a new, empty network namespace held by nothing but that fd. Why: a check that must leave
// nothing behind (macnet doctor) makes its links there; no name under /run/netns, no mount, no process: when the
// fd is closed, or the process ends however it ends (SIGKILL included), the kernel frees the namespace and the
// links in it. unshare(CLONE_NEWNET) moves only the calling thread; it returns to its own namespace at once.
static napi_value new_netns(napi_env env, napi_callback_info info) {
  (void)info;
  int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0) return throw_errno(env, errno, "open own network namespace");
  if (unshare(CLONE_NEWNET) < 0) {
    int e = errno;
    close(home);
    return throw_errno(env, e, "unshare network namespace");
  }
  int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  int e = errno;
  // Failing to return would leave the main thread (and every later socket) in the wrong namespace.
  if (setns(home, CLONE_NEWNET) < 0) abort();
  close(home);
  if (fd < 0) return throw_errno(env, e, "open new network namespace");
  return fd_value(env, fd);
}

// socketPair(domain, type) -> [fd, fd] (non-blocking, close-on-exec): for tests that feed the receive paths
// datagrams the kernel would not produce on demand (a netlink message over 64 KiB).
static napi_value socket_pair(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t domain, type;
  if (argc < 2 || get_i32(env, argv[0], &domain) || get_i32(env, argv[1], &type)) {
    napi_throw_type_error(env, NULL, "socketPair(domain, type)");
    return NULL;
  }
  int sv[2];
  if (socketpair(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) return throw_errno(env, errno, "socketpair");
  napi_value arr, a, b;
  if (napi_create_array_with_length(env, 2, &arr) != napi_ok || napi_create_int32(env, sv[0], &a) != napi_ok ||
      napi_create_int32(env, sv[1], &b) != napi_ok || napi_set_element(env, arr, 0, a) != napi_ok ||
      napi_set_element(env, arr, 1, b) != napi_ok) {
    close(sv[0]);
    close(sv[1]);
    napi_throw_error(env, "EINTERNAL", "N-API call failed: socketPair result");
    return NULL;
  }
  return arr;
}

// setIntOption(fd, level, name, value)
static napi_value set_int_option(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd, level, name, value;
  if (argc < 4 || get_i32(env, argv[0], &fd) || get_i32(env, argv[1], &level) ||
      get_i32(env, argv[2], &name) || get_i32(env, argv[3], &value)) {
    napi_throw_type_error(env, NULL, "setIntOption(fd, level, name, value)");
    return NULL;
  }
  if (setsockopt(fd, level, name, &value, sizeof value) < 0) return throw_errno(env, errno, "setsockopt");
  return NULL;
}

// bindNetlink(fd) -> portid the kernel assigned
static napi_value bind_netlink(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || get_i32(env, argv[0], &fd)) {
    napi_throw_type_error(env, NULL, "bindNetlink(fd)");
    return NULL;
  }
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) return throw_errno(env, errno, "bind netlink");
  socklen_t len = sizeof sa;
  if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0) return throw_errno(env, errno, "getsockname");
  napi_value out;
  NAPI_CALL(env, napi_create_uint32(env, sa.nl_pid, &out));
  return out;
}

// bindPacket(fd, ifindex, protocol) ; protocol in host order (e.g. 0x0806), 0 = none
static napi_value bind_packet(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd, ifindex, proto;
  if (argc < 3 || get_i32(env, argv[0], &fd) || get_i32(env, argv[1], &ifindex) || get_i32(env, argv[2], &proto)) {
    napi_throw_type_error(env, NULL, "bindPacket(fd, ifindex, protocol)");
    return NULL;
  }
  struct sockaddr_ll sa = {.sll_family = AF_PACKET, .sll_protocol = htons((uint16_t)proto), .sll_ifindex = ifindex};
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) return throw_errno(env, errno, "bind packet socket");
  return NULL;
}

// sendPacket(fd, buffer, ifindex, protocol, dstMac: Buffer(6)) -> bytes sent
static napi_value send_packet(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd, ifindex, proto;
  void *data, *mac;
  size_t len, maclen;
  if (argc < 5 || get_i32(env, argv[0], &fd) || get_i32(env, argv[2], &ifindex) || get_i32(env, argv[3], &proto) ||
      napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok ||
      napi_get_buffer_info(env, argv[4], &mac, &maclen) != napi_ok || maclen != 6) {
    napi_throw_type_error(env, NULL, "sendPacket(fd, buffer, ifindex, protocol, dstMac)");
    return NULL;
  }
  struct sockaddr_ll sa = {.sll_family = AF_PACKET, .sll_protocol = htons((uint16_t)proto),
                           .sll_ifindex = ifindex, .sll_halen = 6};
  memcpy(sa.sll_addr, mac, 6);
  ssize_t n = sendto(fd, data, len, 0, (struct sockaddr *)&sa, sizeof sa);
  if (n < 0) return throw_errno(env, errno, "send packet");
  napi_value out;
  NAPI_CALL(env, napi_create_int32(env, (int32_t)n, &out));
  return out;
}

// recv(fd) -> { data: Buffer, ifindex, protocol, pktType, addr: Buffer } | null when nothing is queued.
// The address fields are filled for packet sockets; for netlink they are zero.
static napi_value recv_one(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || get_i32(env, argv[0], &fd)) {
    napi_throw_type_error(env, NULL, "recv(fd)");
    return NULL;
  }
  // The next datagram's real length first (MSG_PEEK | MSG_TRUNC), then a buffer that holds it whole: a fixed
  // buffer would cut a larger one silently, and a static one would be shared by the worker threads that load
  // this addon too.
  ssize_t size;
  do {
    size = recv(fd, NULL, 0, MSG_DONTWAIT | MSG_PEEK | MSG_TRUNC);
  } while (size < 0 && errno == EINTR);
  if (size < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      napi_value nul;
      napi_get_null(env, &nul);
      return nul;
    }
    return throw_errno(env, errno, "recv");
  }
  char *buf = malloc(size > 0 ? (size_t)size : 1);
  if (!buf) return throw_errno(env, ENOMEM, "recv");
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  memset(&ss, 0, sizeof ss);
  ssize_t n;
  do {
    n = recvfrom(fd, buf, size > 0 ? (size_t)size : 1, MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&ss, &sl);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    int e = errno;
    free(buf);
    if (e == EAGAIN || e == EWOULDBLOCK) {
      napi_value nul;
      napi_get_null(env, &nul);
      return nul;
    }
    return throw_errno(env, e, "recv");
  }
  if (n > size) {
    // Another reader took the peeked datagram and a larger one came next: never hand out a cut one.
    free(buf);
    return throw_errno(env, EMSGSIZE, "recv (datagram larger than peeked)");
  }
  napi_value obj, data, v;
  napi_status st = napi_create_object(env, &obj);
  if (st == napi_ok) st = napi_create_buffer_copy(env, (size_t)n, buf, NULL, &data);
  free(buf);
  if (st != napi_ok) {
    napi_throw_error(env, "EINTERNAL", "N-API call failed: recv result");
    return NULL;
  }
  napi_set_named_property(env, obj, "data", data);
  int32_t ifindex = 0, proto = 0, pkttype = 0;
  void *addr = NULL;
  size_t alen = 0;
  if (ss.ss_family == AF_PACKET) {
    struct sockaddr_ll *ll = (struct sockaddr_ll *)&ss;
    ifindex = ll->sll_ifindex;
    proto = ntohs(ll->sll_protocol);
    pkttype = ll->sll_pkttype;
    addr = ll->sll_addr;
    alen = ll->sll_halen > 8 ? 8 : ll->sll_halen;
  }
  napi_create_int32(env, ifindex, &v);
  napi_set_named_property(env, obj, "ifindex", v);
  napi_create_int32(env, proto, &v);
  napi_set_named_property(env, obj, "protocol", v);
  napi_create_int32(env, pkttype, &v);
  napi_set_named_property(env, obj, "pktType", v);
  NAPI_CALL(env, napi_create_buffer_copy(env, alen, alen ? addr : "", NULL, &v));
  napi_set_named_property(env, obj, "addr", v);
  return obj;
}

// closeFd(fd)
static napi_value close_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || get_i32(env, argv[0], &fd)) {
    napi_throw_type_error(env, NULL, "closeFd(fd)");
    return NULL;
  }
  if (close(fd) < 0 && errno != EINTR) return throw_errno(env, errno, "close");
  return NULL;
}

// flock(fd, LOCK_EX | LOCK_NB): the state dir's single-daemon lock. Released by the kernel when the process
// dies, however it dies, so a stale lock cannot outlive its daemon. Returns false when another holds it.
static napi_value flock_exclusive(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || get_i32(env, argv[0], &fd)) {
    napi_throw_type_error(env, NULL, "flockExclusive(fd)");
    return NULL;
  }
  int r;
  do r = flock(fd, LOCK_EX | LOCK_NB); while (r < 0 && errno == EINTR);
  if (r < 0 && errno != EWOULDBLOCK) return throw_errno(env, errno, "flock");
  napi_value out;
  NAPI_CALL(env, napi_get_boolean(env, r == 0, &out));
  return out;
}

// ---- transact: one netlink request and all of its replies, on the thread pool ----

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref buf_ref;
  int fd;
  uint32_t seq;
  int timeout_ms;
  const void *req;
  size_t req_len;
  char *out;
  size_t out_len, out_cap;
  int err;
  const char *what;
} transact_t;

static int append(transact_t *t, const void *p, size_t n) {
  if (t->out_len + n > t->out_cap) {
    size_t cap = t->out_cap ? t->out_cap * 2 : 8192;
    while (cap < t->out_len + n) cap *= 2;
    char *q = realloc(t->out, cap);
    if (!q) return -1;
    t->out = q;
    t->out_cap = cap;
  }
  memcpy(t->out + t->out_len, p, n);
  t->out_len += n;
  return 0;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// Keeps every message whose sequence number is ours; stops at NLMSG_ERROR (an error or the ACK) or
// NLMSG_DONE (end of a dump). Messages with another sequence number are leftovers of a request that timed
// out and are dropped.
static void transact_execute(napi_env env, void *data) {
  (void)env;
  transact_t *t = data;
  ssize_t n;
  do {
    n = send(t->fd, t->req, t->req_len, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    t->err = errno;
    t->what = "netlink send";
    return;
  }
  size_t cap = RECV_BUF;
  char *buf = malloc(cap);
  if (!buf) {
    t->err = ENOMEM;
    t->what = "netlink receive";
    return;
  }
  long long deadline = now_ms() + t->timeout_ms;
  int done = 0;
  while (!done) {
    // The next datagram's real length (MSG_PEEK | MSG_TRUNC), so that one larger than the buffer (a link with
    // many VFs or addresses) grows it and arrives whole instead of failing.
    n = recv(t->fd, NULL, 0, MSG_DONTWAIT | MSG_PEEK | MSG_TRUNC);
    if (n > (ssize_t)cap) {
      char *bigger = realloc(buf, (size_t)n);
      if (!bigger) {
        t->err = ENOMEM;
        t->what = "netlink receive";
        break;
      }
      buf = bigger;
      cap = (size_t)n;
    }
    if (n >= 0) n = recv(t->fd, buf, cap, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        long long left = deadline - now_ms();
        if (left <= 0) {
          t->err = ETIMEDOUT;
          t->what = "netlink receive";
          break;
        }
        struct pollfd p = {.fd = t->fd, .events = POLLIN};
        poll(&p, 1, (int)left);
        continue;
      }
      t->err = errno;
      t->what = "netlink receive";
      break;
    }
    if ((size_t)n > cap) {
      t->err = EMSGSIZE;
      t->what = "netlink receive (message larger than peeked)";
      break;
    }
    size_t off = 0;
    while (off + sizeof(struct nlmsghdr) <= (size_t)n) {
      struct nlmsghdr *h = (struct nlmsghdr *)(buf + off);
      if (h->nlmsg_len < sizeof(struct nlmsghdr) || off + h->nlmsg_len > (size_t)n) break;
      if (h->nlmsg_seq == t->seq) {
        size_t take = NLMSG_ALIGN(h->nlmsg_len);
        if (take > (size_t)n - off) take = (size_t)n - off;
        if (append(t, h, take)) {
          t->err = ENOMEM;
          t->what = "netlink receive";
          done = 1;
          break;
        }
        if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_DONE) done = 1;
      }
      off += NLMSG_ALIGN(h->nlmsg_len);
    }
  }
  free(buf);
}

static void transact_complete(napi_env env, napi_status status, void *data) {
  transact_t *t = data;
  napi_value result;
  if (status != napi_ok) {
    napi_value msg;
    napi_create_string_utf8(env, "netlink request cancelled", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &result);
    napi_reject_deferred(env, t->deferred, result);
  } else if (t->err) {
    napi_reject_deferred(env, t->deferred, make_errno_error(env, t->err, t->what));
  } else {
    napi_create_buffer_copy(env, t->out_len, t->out_len ? t->out : "", NULL, &result);
    napi_resolve_deferred(env, t->deferred, result);
  }
  napi_delete_reference(env, t->buf_ref);
  napi_delete_async_work(env, t->work);
  free(t->out);
  free(t);
}

// transact(fd, request: Buffer, seq, timeoutMs) -> Promise<Buffer> (the concatenated replies)
static napi_value transact(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd, seq, timeout;
  void *req;
  size_t req_len;
  if (argc < 4 || get_i32(env, argv[0], &fd) || get_i32(env, argv[2], &seq) || get_i32(env, argv[3], &timeout) ||
      napi_get_buffer_info(env, argv[1], &req, &req_len) != napi_ok) {
    napi_throw_type_error(env, NULL, "transact(fd, request, seq, timeoutMs)");
    return NULL;
  }
  transact_t *t = calloc(1, sizeof *t);
  if (!t) return throw_errno(env, ENOMEM, "transact");
  t->fd = fd;
  t->seq = (uint32_t)seq;
  t->timeout_ms = timeout;
  t->req = req;
  t->req_len = req_len;
  napi_value promise, name;
  // Each step undone on failure: the reference keeps the request buffer alive, the work item owns t.
  if (napi_create_reference(env, argv[1], 1, &t->buf_ref) != napi_ok) goto free_t;
  if (napi_create_string_utf8(env, "macnet.netlink", NAPI_AUTO_LENGTH, &name) != napi_ok) goto drop_ref;
  if (napi_create_async_work(env, NULL, name, transact_execute, transact_complete, t, &t->work) != napi_ok)
    goto drop_ref;
  if (napi_create_promise(env, &t->deferred, &promise) != napi_ok) goto drop_work;
  if (napi_queue_async_work(env, t->work) != napi_ok) {
    napi_value err;
    napi_create_string_utf8(env, "netlink request not queued", NAPI_AUTO_LENGTH, &name);
    napi_create_error(env, NULL, name, &err);
    napi_reject_deferred(env, t->deferred, err);
    goto drop_work;
  }
  return promise;
drop_work:
  napi_delete_async_work(env, t->work);
drop_ref:
  napi_delete_reference(env, t->buf_ref);
free_t:
  free(t);
  napi_throw_error(env, "EINTERNAL", "N-API call failed: transact");
  return NULL;
}

// ---- readiness watching for event and packet sockets ----

// The handle is a JS object that carries the callback (property "onReadable") and wraps the watch; C keeps
// only a weak reference to it. So the callback lives exactly as long as the handle, and a handle dropped
// without unwatch() (its owner garbage) is finalized: polling stops, nothing leaks. A strong reference to the
// callback from C, as before, kept the callback, its closure and the handle alive and polling forever.
typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref handle;
  int closing;
} watch_t;

static void watch_closed(uv_handle_t *h) {
  watch_t *w = (watch_t *)h;
  free(w);
}

// Stops polling and frees w once libuv has closed the handle. The weak reference goes first.
static void watch_stop(napi_env env, watch_t *w) {
  if (w->closing) return;
  w->closing = 1;
  if (w->handle) napi_delete_reference(env, w->handle);
  w->handle = NULL;
  uv_poll_stop(&w->poll);
  uv_close((uv_handle_t *)&w->poll, watch_closed);
}

static void watch_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  watch_stop(env, (watch_t *)data);
}

static void watch_cb(uv_poll_t *p, int status, int events) {
  (void)events;
  watch_t *w = (watch_t *)p;
  if (w->closing) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value handle = NULL, cb, arg, result;
  napi_get_reference_value(env, w->handle, &handle);
  // NULL: collected, its finalizer not run yet; it will stop the poll.
  if (handle && napi_get_named_property(env, handle, "onReadable", &cb) == napi_ok &&
      napi_create_int32(env, status, &arg) == napi_ok &&
      napi_call_function(env, handle, cb, 1, &arg, &result) == napi_pending_exception) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
  napi_close_handle_scope(env, scope);
}

// watch(fd, callback(status)) -> handle. The callback runs on the event loop each time fd is readable, for as
// long as the handle is reachable and not unwatched.
static napi_value watch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  napi_valuetype cbt;
  if (argc < 2 || get_i32(env, argv[0], &fd) || napi_typeof(env, argv[1], &cbt) != napi_ok || cbt != napi_function) {
    napi_throw_type_error(env, NULL, "watch(fd, callback)");
    return NULL;
  }
  uv_loop_t *loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  napi_value handle;
  NAPI_CALL(env, napi_create_object(env, &handle));
  NAPI_CALL(env, napi_set_named_property(env, handle, "onReadable", argv[1]));
  watch_t *w = calloc(1, sizeof *w);
  if (!w) return throw_errno(env, ENOMEM, "watch");
  w->env = env;
  int rc = uv_poll_init(loop, &w->poll, fd);
  if (rc < 0) {
    free(w);
    return throw_errno(env, -rc, "watch");
  }
  // From here on w belongs to the libuv handle: every failure closes it (watch_closed frees w).
  if (napi_create_reference(env, handle, 0, &w->handle) != napi_ok) {
    w->handle = NULL;
    watch_stop(env, w);
    napi_throw_error(env, "EINTERNAL", "N-API call failed: watch reference");
    return NULL;
  }
  if (napi_wrap(env, handle, w, watch_finalize, NULL, NULL) != napi_ok) {
    watch_stop(env, w);
    napi_throw_error(env, "EINTERNAL", "N-API call failed: watch wrap");
    return NULL;
  }
  rc = uv_poll_start(&w->poll, UV_READABLE, watch_cb);
  if (rc < 0) {
    napi_remove_wrap(env, handle, NULL);
    watch_stop(env, w);
    return throw_errno(env, -rc, "watch");
  }
  return handle;
}

// unwatch(handle): stops watching; safe to call twice. Must be called before the fd is closed.
static napi_value unwatch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype t;
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_object) {
    napi_throw_type_error(env, NULL, "unwatch(handle)");
    return NULL;
  }
  void *p;
  // Already unwatched: the wrap is gone.
  if (napi_remove_wrap(env, argv[0], &p) != napi_ok) return NULL;
  watch_stop(env, (watch_t *)p);
  return NULL;
}

// errnoName(n) -> [name, message]
static napi_value errno_name(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t n;
  if (argc < 1 || get_i32(env, argv[0], &n)) {
    napi_throw_type_error(env, NULL, "errnoName(n)");
    return NULL;
  }
  const char *name = strerrorname_np(n);
  napi_value arr, a, b;
  NAPI_CALL(env, napi_create_array_with_length(env, 2, &arr));
  napi_create_string_utf8(env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &a);
  napi_create_string_utf8(env, strerror(n), NAPI_AUTO_LENGTH, &b);
  napi_set_element(env, arr, 0, a);
  napi_set_element(env, arr, 1, b);
  return arr;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"openSocket", NULL, open_socket, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setIntOption", NULL, set_int_option, NULL, NULL, NULL, napi_enumerable, NULL},
      {"bindNetlink", NULL, bind_netlink, NULL, NULL, NULL, napi_enumerable, NULL},
      {"bindPacket", NULL, bind_packet, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendPacket", NULL, send_packet, NULL, NULL, NULL, napi_enumerable, NULL},
      {"recv", NULL, recv_one, NULL, NULL, NULL, napi_enumerable, NULL},
      {"closeFd", NULL, close_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"flockExclusive", NULL, flock_exclusive, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openInNetns", NULL, open_in_netns, NULL, NULL, NULL, napi_enumerable, NULL},
      {"newNetns", NULL, new_netns, NULL, NULL, NULL, napi_enumerable, NULL},
      {"socketPair", NULL, socket_pair, NULL, NULL, NULL, napi_enumerable, NULL},
      {"transact", NULL, transact, NULL, NULL, NULL, napi_enumerable, NULL},
      {"watch", NULL, watch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unwatch", NULL, unwatch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"errnoName", NULL, errno_name, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
