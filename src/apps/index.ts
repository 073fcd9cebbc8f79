// App channels and app state: local apps connect to their agent's app socket to exchange messages
// with apps on other agents and to have their state taken at each snapshot's cut (README, "Apps:
// channels and state"). The client side is in client.ts (`snapmesh/app`).
import { AppHub, type AppHubComponents, type AppHubInit } from './hub.js'

export { AppHub, APPS_SOURCE, messageId, type AppCutResult, type AppHubComponents, type AppHubInit, type StoredMessage } from './hub.js'
export { CutMachine, type AppCutPart, type AppMessage, type ChannelCount, type CutMachineInit, type CutRecord, type Effect, type Endpoint, type Frame, type Verdict } from './cut.js'
export { APP_PROTOCOL, APP_NAME, decodeFrame, encodeFrame } from './wire.js'
export { parseAppRequest, appRequestSchemas, type AgentEvent, type AppRequest } from './socket-messages.js'
export * from './errors.js'

export function createAppHub (components: AppHubComponents, init: AppHubInit): AppHub {
  return new AppHub(components, init)
}
