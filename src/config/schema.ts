// JSON schema of the agent's config file. Every key is documented in README.md ("Config").

/** an argv list run without a shell, or a string run by /bin/sh -c */
const commandSchema = {
  type: ['array', 'string'],
  minItems: 1,
  items: { type: 'string' },
  minLength: 1
} as const

/** a pre or post hook */
const hookSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['command'],
  properties: {
    command: commandSchema,
    timeoutSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 86400 }
  }
} as const

export const configSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    $schema: { type: 'string' },
    name: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[^\\s/]+$' },
    dataDir: { type: 'string', minLength: 1 },
    listen: { type: 'array', items: { type: 'string', pattern: '^/' }, minItems: 1 },
    announce: { type: 'array', items: { type: 'string', pattern: '^/' } },
    bootstrap: { type: 'array', items: { type: 'string', pattern: '^/.+/p2p/[1-9A-HJ-NP-Za-km-z]+$' } },
    adminSocket: { type: 'string', minLength: 1 },
    // modes are octal strings ("0600"), groups a name or a gid: checked in sockets.ts to name the field
    adminSocketMode: { type: 'string' },
    adminSocketGroup: { type: ['string', 'integer'], minLength: 1, minimum: 0, maximum: 4294967294 },
    readSocket: { type: ['string', 'boolean', 'null'], minLength: 1 },
    readSocketMode: { type: 'string' },
    readSocketGroup: { type: ['string', 'integer'], minLength: 1, minimum: 0, maximum: 4294967294 },
    psk: { type: ['string', 'null'], minLength: 1 },
    sources: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        // exactly one of path and command: checked in index.ts, to name the field in the error
        required: ['name'],
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' },
          path: { type: 'string', minLength: 1 },
          exclude: { type: 'array', items: { type: 'string', minLength: 1 } },
          command: commandSchema,
          output: { type: 'string', minLength: 1 },
          timeoutSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 7 * 86400 },
          cwd: { type: 'string', minLength: 1 },
          pre: hookSchema,
          post: hookSchema
        }
      }
    },
    snapshot: {
      type: 'object',
      additionalProperties: false,
      properties: {
        deadlineSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 86400 },
        consistency: { enum: ['marker', 'barrier'] },
        prepareTimeoutSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 3600 },
        maxPrepareTimeoutSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 3600 },
        maxFreezeSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 604800 }
      }
    },
    schedules: {
      type: 'array',
      maxItems: 64,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'cron'],
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' },
          cron: { type: 'string', minLength: 1, maxLength: 256 },
          tag: { type: 'string', minLength: 1, maxLength: 256 }
        }
      }
    },
    replication: {
      type: 'object',
      additionalProperties: false,
      properties: {
        copies: { type: 'integer', minimum: 1, maximum: 16 },
        concurrency: { type: 'integer', minimum: 1, maximum: 64 },
        bandwidthMBps: { type: 'number', minimum: 0 },
        graceSeconds: { type: 'number', minimum: 0, maximum: 30 * 86400 },
        checkSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 86400 }
      }
    },
    retention: {
      type: 'object',
      additionalProperties: false,
      properties: {
        pruneGraceSeconds: { type: 'number', minimum: 0, maximum: 30 * 86400 },
        sweepHours: { type: 'number', minimum: 0, maximum: 576 }
      }
    },
    audit: {
      type: 'object',
      additionalProperties: false,
      properties: {
        headSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 86400 },
        maxFileBytes: { type: 'integer', minimum: 4096, maximum: 1073741824 },
        rejectWindowSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 86400 }
      }
    },
    apps: {
      type: 'object',
      additionalProperties: false,
      properties: {
        socket: { type: 'string', minLength: 1 },
        maxMessageBytes: { type: 'integer', minimum: 1, maximum: 4194304 },
        maxStateBytes: { type: 'integer', minimum: 1, maximum: 268435456 },
        // app name -> token file; names checked in sockets.ts
        tokens: { type: 'object', maxProperties: 1000, additionalProperties: { type: 'string', minLength: 1 } }
      }
    },
    network: {
      type: 'object',
      additionalProperties: false,
      properties: {
        maxMessageBytes: { type: 'integer', minimum: 4096, maximum: 4194304 },
        reconnectSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 3600 },
        syncSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 86400 },
        republishHours: { type: 'number', exclusiveMinimum: 0, maximum: 47 },
        fetchConcurrency: { type: 'integer', minimum: 1, maximum: 64 },
        fetchTimeoutSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 3600 },
        maxClockSkewSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 604800 },
        banSeconds: { type: 'number', minimum: 0, maximum: 604800 }
      }
    }
  }
} as const
