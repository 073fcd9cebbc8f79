import fs from 'node:fs/promises'
import path from 'node:path'
import { Command } from 'commander'
import { generatePsk } from '../../node/psk.js'
import { printJson, type GlobalOptions } from '../context.js'

export function keygenCommand (globals: () => GlobalOptions): Command {
  return new Command('keygen')
    .description('create a pre-shared key for a private network')
    .requiredOption('--psk', 'create a swarm.key (the only kind of key there is)')
    .option('--out <file>', 'write it to this file (mode 0600; never overwrites) instead of stdout')
    .action(async (opts: { out?: string }) => {
      const key = generatePsk()
      if (opts.out == null) {
        process.stdout.write(Buffer.from(key).toString('utf8') + '\n')
        return
      }
      const file = path.resolve(opts.out)
      try {
        await fs.writeFile(file, key, { mode: 0o600, flag: 'wx' })
      } catch (err: any) {
        if (err.code === 'EEXIST') throw new Error(`${file} already exists: refusing to overwrite a key`)
        throw err
      }
      if (globals().json === true) printJson({ file })
      else process.stdout.write(`wrote ${file}: copy it to every host and set "psk" in their configs\n`)
    })
}
