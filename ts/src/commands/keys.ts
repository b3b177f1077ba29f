/** `lrbridge keys DIR [NAME]`: a CURVE key pair in pyzmq's certificate files. */
import { CertificateError, writeKeyPair } from "../server/certs";

const DEFAULT_NAME = "server";

const USAGE = `usage: lrbridge keys DIR [NAME]

Writes a new CURVE key pair: DIR/NAME.key (public: give it to the other side)
and DIR/NAME.key_secret (secret, mode 0600: keep it). NAME defaults to
"${DEFAULT_NAME}". Existing files are never overwritten. The files are pyzmq's
certificate format (zmq.auth.load_certificate reads them).

  server:  lrbridge serve --curve-secret DIR/server.key_secret --allow CLIENTS_DIR
  client:  LRBRIDGE_SERVER_KEY=DIR/server.key LRBRIDGE_CLIENT_KEY=DIR/NAME.key_secret
`;

export async function run(args: string[]): Promise<number> {
  if (args.includes("-h") || args.includes("--help")) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (args.length < 1 || args.length > 2 || args.some((a) => a.startsWith("-"))) {
    process.stderr.write(`lrbridge keys: expected DIR [NAME]\n${USAGE}`);
    return 2;
  }
  const [dir, name = DEFAULT_NAME] = args;
  try {
    const written = writeKeyPair(dir, name);
    process.stdout.write(`public key ${written.publicKey}\n  public: ${written.publicFile}\n  secret: ${written.secretFile}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof CertificateError)) throw err;
    process.stderr.write(`lrbridge keys: ${err.message}\n`);
    return 1;
  }
}
