#!/usr/bin/env node
import '../polyfill.js'
import { run } from './program.js'

process.exitCode = await run(process.argv)
