// Which app may register which name on the app socket: each configured name has a token, read
// from its file when the hub starts, and a hello must carry it. Tokens are compared as sha256
// digests with timingSafeEqual, so neither their bytes nor their length show in the timing.
import { createHash, timingSafeEqual } from 'node:crypto'
import fs from 'node:fs/promises'
import { AppTokenError } from './errors.js'

/** tokens shorter than this are refused: too easy to guess */
export const MIN_TOKEN_BYTES = 16

const digest = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest()

/** The token in a file: its text without the trailing newline and blanks. */
export async function readTokenFile (file: string): Promise<string> {
  return (await fs.readFile(file, 'utf8')).replace(/\s+$/, '')
}

export class AppTokens {
  private readonly digests: Map<string, Buffer>

  private constructor (digests: Map<string, Buffer>) {
    this.digests = digests
  }

  /**
   * Reads every token file (app name -> path). A file that is missing, shorter than
   * MIN_TOKEN_BYTES, or readable by every local user is refused with AppTokenError.
   */
  static async load (files: Record<string, string>): Promise<AppTokens> {
    const digests = new Map<string, Buffer>()
    for (const [app, file] of Object.entries(files)) {
      let token: string
      try {
        const st = await fs.stat(file)
        if ((st.mode & 0o004) !== 0) throw new Error(`it is readable by every local user (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}): make it 0600 or 0640`)
        token = await readTokenFile(file)
      } catch (err: any) {
        throw new AppTokenError(`the token file of app ${JSON.stringify(app)} (apps.tokens), ${file}: ${String(err.message)}`, 'token')
      }
      if (Buffer.byteLength(token) < MIN_TOKEN_BYTES) {
        throw new AppTokenError(`the token of app ${JSON.stringify(app)} in ${file} is ${Buffer.byteLength(token)} bytes; at least ${MIN_TOKEN_BYTES} are needed`, 'token')
      }
      digests.set(app, digest(token))
    }
    return new AppTokens(digests)
  }

  /** Throws AppTokenError unless `token` is the one configured for `app`. */
  check (app: string, token: string | undefined): void {
    const want = this.digests.get(app)
    if (want == null) throw new AppTokenError(`app ${JSON.stringify(app)} is not configured on this agent (apps.tokens names the apps that may register)`, 'app')
    if (token == null) throw new AppTokenError(`app ${JSON.stringify(app)} needs its token: this agent has apps.tokens, give "token" in the hello`, 'token')
    if (!timingSafeEqual(want, digest(token))) throw new AppTokenError(`wrong token for app ${JSON.stringify(app)}`, 'token')
  }
}
