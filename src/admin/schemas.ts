import { Ajv } from 'ajv'
import { InvalidRequestError } from './errors.js'
import type { ErrorObject, ValidateFunction } from 'ajv'

const ajv = new Ajv({ allErrors: false, strict: true })

export const validateCreate = ajv.compile({
  type: 'object',
  additionalProperties: false,
  properties: {
    tag: { type: 'string', minLength: 1, maxLength: 256 },
    consistency: { enum: ['marker', 'barrier'] },
    prepareTimeoutSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 3600 }
  }
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
    resume: { type: 'boolean' },
    keepSpecialBits: { type: 'boolean' },
    noOwner: { type: 'boolean' }
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

const count = { type: 'integer', minimum: -1, maximum: 1000000 }

export const validateForget = ajv.compile({
  type: 'object',
  additionalProperties: false,
  properties: {
    snapshots: { type: 'array', minItems: 1, maxItems: 1000, items: { type: 'string', minLength: 1, maxLength: 64 } },
    keep: {
      type: 'object',
      additionalProperties: false,
      properties: {
        last: count,
        hourly: count,
        daily: count,
        weekly: count,
        monthly: count,
        yearly: count,
        withinSeconds: { type: 'number', minimum: 0, maximum: 1e10 },
        tags: { type: 'array', maxItems: 100, items: { type: 'string', minLength: 1, maxLength: 256 } }
      }
    },
    dryRun: { type: 'boolean' },
    prune: { type: 'boolean' }
  }
})

export const validatePrune = ajv.compile({
  type: 'object',
  additionalProperties: false,
  properties: {
    dryRun: { type: 'boolean' }
  }
})

export const validateAuditVerify = ajv.compile({
  type: 'object',
  additionalProperties: false,
  properties: {}
})

/** The first schema error as a sentence naming the field, e.g. `field "tag" must be string`. */
export function describeErrors (errors: ErrorObject[] | null | undefined): string {
  const e = errors?.[0]
  if (e == null) return 'request body is invalid'
  const field = e.instancePath.split('/').filter(p => p !== '').map(p => /^\d+$/.test(p) ? `[${p}]` : `.${p}`).join('').replace(/^\./, '')
  if (e.keyword === 'additionalProperties') return `unknown field "${String(e.params.additionalProperty)}"`
  if (e.keyword === 'required') return `field "${String(e.params.missingProperty)}" is required`
  if (field === '') return `request body ${e.message ?? 'is invalid'}`
  return `field "${field}" ${e.message ?? 'is invalid'}`
}

/** Returns the body typed as `T`, or throws InvalidRequestError naming the first wrong field. */
export function checkBody<T> (validate: ValidateFunction, body: unknown): T {
  if (!validate(body)) throw new InvalidRequestError(describeErrors(validate.errors))
  return body as T
}
