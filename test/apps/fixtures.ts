import net from 'node:net'

export interface RawAppConnection {
  /** a line as it is (a newline is added when missing), or an object sent as one JSON line */
  send: (line: string | object) => void
  /** the next line the agent sent, parsed */
  next: () => Promise<any>
  close: () => void
}

/** a raw connection to an app socket that collects the agent's lines, one parsed line at a time */
export async function rawAppConnection (socket: string): Promise<RawAppConnection> {
  const s = net.connect(socket)
  await new Promise(resolve => s.once('connect', resolve))
  const lines: any[] = []
  const waiting: Array<(v: any) => void> = []
  let buf = ''
  s.on('data', (d: Buffer) => {
    buf += d.toString()
    let nl
    while ((nl = buf.indexOf('\n')) >= 0) {
      const ev = JSON.parse(buf.slice(0, nl))
      buf = buf.slice(nl + 1)
      const w = waiting.shift()
      if (w != null) w(ev)
      else lines.push(ev)
    }
  })
  return {
    send: (line) => {
      const text = typeof line === 'string' ? line : JSON.stringify(line)
      s.write(text.endsWith('\n') ? text : `${text}\n`)
    },
    next: async () => lines.length > 0 ? lines.shift() : new Promise(resolve => waiting.push(resolve)),
    close: () => { s.destroy() }
  }
}
