// Imported first by a scenario file that runs with the daemon on etcd: ./fixture.ts reads this when it loads.
process.env['MACNET_TEST_STORE'] = 'etcd';
