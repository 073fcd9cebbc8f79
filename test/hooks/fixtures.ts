import { readFileSync } from 'node:fs'
import fs from 'node:fs/promises'

/** true while `pid` is a live process (a zombie, which no longer runs, counts as gone) */
export function alive (pid: number): boolean {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    try {
      process.kill(pid, 0)
      return true
    } catch {
      return false
    }
  }
  // "pid (comm) S ...": the state follows the last parenthesis
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
  return state !== 'Z' && state !== 'X'
}

/** reads a pid a test command wrote, waiting for it to appear */
export async function readPid (file: string): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const text = await fs.readFile(file, 'utf8').catch(() => '')
    if (/^\d+\s*$/.test(text)) return Number(text)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`no pid in ${file}`)
}

/** SIGKILLs processes a test left behind, if they are still there */
export function killAll (pids: number[]): void {
  for (const pid of pids) {
    try { process.kill(pid, 'SIGKILL') } catch {}
  }
}

/** the lines of a file, or [] when it does not exist */
export async function lines (file: string): Promise<string[]> {
  const text = await fs.readFile(file, 'utf8').catch(() => '')
  return text.split('\n').filter(l => l !== '')
}
