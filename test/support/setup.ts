import nock from 'nock';

// No network in tests: only loopback, where the gateway and the simulators run.
nock.disableNetConnect();
nock.enableNetConnect(/^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/);
