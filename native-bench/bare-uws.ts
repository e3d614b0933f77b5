// The ceiling: bare uWebSockets.js answering the same /health body the gateway
// answers, nothing else. Prints one JSON "listening" line with its port.
import { nativeUws } from '../src/gateway/native.js';

const uws = nativeUws();
const body = JSON.stringify({ status: 'ok' });
uws
  .App()
  .get('/health', (res) => {
    res.writeStatus('200 OK').writeHeader('Content-Type', 'application/json').end(body);
  })
  .listen('127.0.0.1', 0, (socket) => {
    if (!socket) process.exit(1);
    console.log(JSON.stringify({ msg: 'listening', port: uws.us_socket_local_port(socket) }));
  });
process.on('SIGTERM', () => process.exit(0));
