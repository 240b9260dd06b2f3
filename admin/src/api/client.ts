// The console speaks to the public /graphql only: POST for queries and mutations,
// graphql-transport-ws on the same URL for subscriptions.
import { createClient, type Client } from 'graphql-ws'
import { lang } from '../i18n'

export interface UserError {
  code: string
  message: string
  field: string[] | null
}

export class RequestFailed extends Error {
  constructor(
    message: string,
    public readonly code: string | null,
    public readonly status: number,
  ) {
    super(message)
  }
}

let accessToken = ''
let onUnauthorised: () => void = () => {}
let socket: Client | null = null
export const connection = { live: true, listeners: new Set<(live: boolean) => void>() }

function setLive(live: boolean): void {
  connection.live = live
  connection.listeners.forEach((listener) => listener(live))
}

export function useToken(token: string): void {
  accessToken = token
}

export function whenUnauthorised(handler: () => void): void {
  onUnauthorised = handler
}

export async function gql<T>(
  query: string,
  variables: Record<string, unknown> = {},
  options: { anonymous?: boolean } = {},
): Promise<T> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json',
    'accept-language': lang.value === 'en' ? 'en' : 'zh-CN',
  }
  if (accessToken && !options.anonymous) headers.authorization = `Bearer ${accessToken}`
  const response = await fetch('/graphql', {
    method: 'POST',
    headers,
    body: JSON.stringify({ query, variables }),
  })
  if (response.status === 401) {
    if (!options.anonymous) onUnauthorised()
    throw new RequestFailed('unauthorised', 'UNAUTHENTICATED', 401)
  }
  const body = (await response.json()) as {
    data?: T
    errors?: { message: string; extensions?: { code?: string } }[]
  }
  if (body.errors?.length) {
    const first = body.errors[0]
    throw new RequestFailed(first.message, first.extensions?.code ?? null, response.status)
  }
  if (!body.data) throw new RequestFailed(`HTTP ${response.status}`, null, response.status)
  return body.data
}

function wsUrl(): string {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:'
  return `${scheme}//${location.host}/graphql`
}

function client(): Client {
  if (socket === null) {
    socket = createClient({
      url: wsUrl(),
      lazy: true,
      // The token of the moment: a reconnect after a refresh signs in with the new one.
      connectionParams: () => (accessToken ? { authorization: `Bearer ${accessToken}` } : {}),
      retryAttempts: Infinity,
      shouldRetry: () => true,
      keepAlive: 10_000,
      on: {
        connected: () => setLive(true),
        // A lazy socket closes normally (1000) when no subscription needs it: not a loss.
        closed: (event) => setLive((event as CloseEvent | undefined)?.code === 1000),
      },
    })
  }
  return socket
}

/** Sign-out, or a new viewer: every subscription ends with the old connection. */
export function closeSubscriptions(): void {
  socket?.dispose()
  socket = null
}

export function subscribe<T>(
  query: string,
  variables: Record<string, unknown>,
  onData: (data: T) => void,
  onError: (message: string) => void = () => {},
): () => void {
  return client().subscribe<T>(
    { query, variables },
    {
      next: (result) => {
        if (result.errors?.length) onError(result.errors.map((e) => e.message).join('; '))
        else if (result.data) onData(result.data as T)
      },
      error: (error) => onError(error instanceof Error ? error.message : String(error)),
      complete: () => {},
    },
  )
}

/** The message of the first error about `field` (its first segment), for a form item. */
export function fieldErrors(errors: UserError[]): Record<string, string> {
  const found: Record<string, string> = {}
  for (const error of errors) {
    const path = (error.field ?? []).filter((part) => part !== 'input')
    const key = path.length ? path.join('.') : '_'
    if (!(key in found)) found[key] = error.message
  }
  return found
}

/** An idempotency key. crypto.randomUUID exists only on https and localhost; a console opened
 * by a store's LAN address over http still makes its keys from the same random source. */
export function newKey(prefix: string): string {
  if (typeof crypto.randomUUID === 'function') return `${prefix}-${crypto.randomUUID()}`
  const hex = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('')
  return `${prefix}-${hex}`
}
