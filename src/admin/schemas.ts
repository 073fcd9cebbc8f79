import { Ajv } from 'ajv'

const ajv = new Ajv({ allErrors: false, strict: true })

export const validateCreate = ajv.compile({
  type: 'object',
  additionalProperties: false,
  properties: { tag: { type: 'string', minLength: 1, maxLength: 256 } }
})

export const validateRestore = ajv.compile({
  type: 'object',
  additionalProperties: false,
  required: ['snapshot', 'target'],
  properties: {
    snapshot: { type: 'string', minLength: 1, maxLength: 64 },
    node: { type: 'string', minLength: 1, maxLength: 256 },
    target: { type: 'string', minLength: 1, maxLength: 4096 },
    include: { type: 'array', maxItems: 1000, items: { type: 'string', minLength: 1, maxLength: 4096 } },
    resume: { type: 'boolean' }
  }
})

export const validateVerify = ajv.compile({
  type: 'object',
  additionalProperties: false,
  required: ['snapshot'],
  properties: {
    snapshot: { type: 'string', minLength: 1, maxLength: 64 },
    node: { type: 'string', minLength: 1, maxLength: 256 },
    readData: { type: 'boolean' },
    repair: { type: 'boolean' }
  }
})

/** the first schema error as `field: problem` */
export function describeErrors (errors: Array<{ instancePath: string, keyword: string, message?: string, params: any }> | null | undefined): string {
  const e = errors?.[0]
  if (e == null) return 'invalid body'
  const field = e.instancePath.replace(/^\//, '').replace(/\//g, '.')
  if (e.keyword === 'additionalProperties') return `unknown field "${String(e.params.additionalProperty)}"`
  if (e.keyword === 'required') return `field "${String(e.params.missingProperty)}" is required`
  return `field "${field === '' ? '(body)' : field}" ${e.message ?? 'is invalid'}`
}
