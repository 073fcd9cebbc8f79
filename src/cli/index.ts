export { createProgram, run } from './program.js'
export { EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INCOMPLETE, configPath } from './context.js'
export type { GlobalOptions } from './context.js'
export { KeyFileExistsError, InterruptedError, NoConfigError } from './errors.js'
