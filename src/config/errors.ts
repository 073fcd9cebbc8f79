export class ConfigError extends Error {
  override name = 'ConfigError'
  code = 'ERR_INVALID_CONFIG'
  readonly file: string
  readonly field?: string

  constructor (file: string, message: string, field?: string) {
    super(field != null ? `${file}: ${field}: ${message}` : `${file}: ${message}`)
    this.file = file
    this.field = field
  }
}
