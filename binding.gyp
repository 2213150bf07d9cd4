{
  "targets": [
    {
      "target_name": "macnet_sock",
      "sources": ["native/macnet_sock.c"],
      "cflags": ["-Wall", "-Wextra", "-O2", "-std=gnu11"]
    }
  ]
}
