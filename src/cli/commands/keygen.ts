import fs from 'node:fs/promises'
import path from 'node:path'
import { Command } from 'commander'
import { print, printJson, type GlobalOptions } from '../context.js'
import { KeyFileExistsError } from '../errors.js'

/** Creates `file` with mode 0600 holding `key`; never replaces an existing file. */
export async function writeKeyFile (file: string, key: Uint8Array): Promise<void> {
  let fh
  try {
    fh = await fs.open(file, 'wx', 0o600)
  } catch (err: any) {
    if (err.code === 'EEXIST') throw new KeyFileExistsError(`${file} already exists: refusing to overwrite a key (remove it first if you mean to replace it)`)
    throw err
  }
  try {
    // the umask may have taken bits away, never added any; make it exactly 0600 regardless
    await fh.chmod(0o600)
    await fh.writeFile(key)
    await fh.sync()
  } finally {
    await fh.close()
  }
}

export function keygenCommand (globals: () => GlobalOptions): Command {
  return new Command('keygen')
    .description('create a pre-shared key (swarm.key) for a private network')
    .requiredOption('--psk', 'create a swarm.key (the only kind of key there is)')
    .option('--out <file>', 'write it to this file (mode 0600; never overwrites) instead of stdout')
    .action(async (opts: { out?: string }) => {
      const g = globals()
      const { generatePsk } = await import('../../node/psk.js')
      const key = generatePsk()
      if (opts.out == null) {
        const text = Buffer.from(key).toString('utf8')
        if (g.json === true) printJson({ key: text })
        else print(text)
        return
      }
      const file = path.resolve(opts.out)
      await writeKeyFile(file, key)
      if (g.json === true) printJson({ file })
      else print(`wrote ${file}: copy it to every host and set "psk" in their configs`)
    })
}
