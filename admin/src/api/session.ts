// Who is signed in: tokens in memory and sessionStorage (gone when the tab closes),
// refreshed a minute before the access token expires; the store being worked on.
import { reactive } from 'vue'
import { closeSubscriptions, gql, useToken, whenUnauthorised, type UserError } from './client'

export interface StoreRef {
  id: string
  name: string
}

export interface StaffInfo {
  id: string | null
  username: string
  displayName: string
  role: string
  stores: StoreRef[]
  totpEnabled: boolean
  /** A temporary password was set: the console asks for a new one before anything else. */
  mustChangePassword?: boolean
}

interface Saved {
  accessToken: string
  refreshToken: string | null
  expiresAt: string | null
  staff: StaffInfo
  storeId: string
}

const STAFF = 'staff { id username displayName role stores { id name } totpEnabled mustChangePassword }'
const SESSION = `accessToken refreshToken expiresAt ${STAFF} errors { code field message }`

export const LOGIN = `mutation StaffLogin($input: StaffLoginInput!) {
  staffLogin(input: $input) { ${SESSION} }
}`
const REFRESH = `mutation RefreshStaffSession($input: RefreshStaffSessionInput!) {
  refreshStaffSession(input: $input) { ${SESSION} }
}`
const LOGOUT = `mutation StaffLogout($input: StaffLogoutInput!) {
  staffLogout(input: $input) { errors { code field message } }
}`
const ME = `query Me { viewer { ${STAFF} } }`
// Servers from before staff sign-in know the account by its store ids only.
const ME_BEFORE_SIGN_IN = 'query MeByToken { viewer { staff { username role storeIds } } }'
const ALL_STORES = 'query AllStores { stores(first: 100) { edges { node { id name } } } }'

interface SessionPayload {
  accessToken: string | null
  refreshToken: string | null
  expiresAt: string | null
  staff: StaffInfo | null
  errors: UserError[]
}

const KEY = 'dinegraph.session'

export const session = reactive({
  accessToken: '',
  refreshToken: null as string | null,
  expiresAt: null as string | null,
  staff: null as StaffInfo | null,
  storeId: '',
})

let refreshTimer: number | undefined

function persist(): void {
  if (!session.staff) {
    sessionStorage.removeItem(KEY)
    return
  }
  const saved: Saved = {
    accessToken: session.accessToken,
    refreshToken: session.refreshToken,
    expiresAt: session.expiresAt,
    staff: session.staff,
    storeId: session.storeId,
  }
  sessionStorage.setItem(KEY, JSON.stringify(saved))
}

function adopt(payload: {
  accessToken: string
  refreshToken: string | null
  expiresAt: string | null
  staff: StaffInfo
}): void {
  session.accessToken = payload.accessToken
  session.refreshToken = payload.refreshToken
  session.expiresAt = payload.expiresAt
  session.staff = payload.staff
  if (!payload.staff.stores.some((s) => s.id === session.storeId)) {
    session.storeId = payload.staff.stores[0]?.id ?? ''
  }
  useToken(payload.accessToken)
  persist()
  scheduleRefresh()
}

function scheduleRefresh(): void {
  window.clearTimeout(refreshTimer)
  if (!session.refreshToken || !session.expiresAt) return
  const due = new Date(session.expiresAt).getTime() - Date.now() - 60_000
  refreshTimer = window.setTimeout(() => void refresh(), Math.max(due, 1_000))
}

async function refresh(): Promise<void> {
  if (!session.refreshToken) return
  try {
    const data = await gql<{ refreshStaffSession: SessionPayload }>(REFRESH, {
      input: { refreshToken: session.refreshToken },
    }, { anonymous: true })
    const answer = data.refreshStaffSession
    if (answer.errors.length || !answer.accessToken || !answer.staff) {
      signOut()
      return
    }
    adopt({ ...answer, accessToken: answer.accessToken, staff: answer.staff })
  } catch {
    // The server is out of reach: try again shortly, while the token still lasts.
    refreshTimer = window.setTimeout(() => void refresh(), 10_000)
  }
}

export async function signIn(
  username: string,
  password: string,
  totpCode: string | null,
): Promise<UserError[]> {
  const data = await gql<{ staffLogin: SessionPayload }>(LOGIN, {
    input: { username, password, ...(totpCode ? { totpCode } : {}) },
  }, { anonymous: true })
  const answer = data.staffLogin
  if (answer.errors.length) return answer.errors
  if (!answer.accessToken || !answer.staff) return [{ code: 'UNAUTHENTICATED', field: null, message: '' }]
  closeSubscriptions()
  adopt({ ...answer, accessToken: answer.accessToken, staff: answer.staff })
  return []
}

function tokenExpiry(token: string): string | null {
  try {
    const claims = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')))
    return typeof claims.exp === 'number' ? new Date(claims.exp * 1000).toISOString() : null
  } catch {
    return null
  }
}

/** For automation and for servers without staff sign-in: a token from `dinegraph staff-token`. */
export async function signInWithToken(token: string): Promise<boolean> {
  useToken(token)
  let staff: StaffInfo | null = null
  try {
    const data = await gql<{ viewer: { staff: StaffInfo | null } }>(ME)
    staff = data.viewer.staff
  } catch {
    const data = await gql<{ viewer: { staff: { username: string; role: string; storeIds: string[] } | null } }>(
      ME_BEFORE_SIGN_IN,
    )
    const old = data.viewer.staff
    if (old) {
      const all = await gql<{ stores: { edges: { node: StoreRef }[] } }>(ALL_STORES)
      const every = all.stores.edges.map((e) => e.node)
      staff = {
        id: null,
        username: old.username,
        displayName: old.username,
        role: old.role,
        stores: old.role === 'HQ_ADMIN' || old.role === 'OPERATOR' ? every : every.filter((s) => old.storeIds.includes(s.id)),
        totpEnabled: false,
      }
    }
  }
  if (!staff) {
    useToken('')
    return false
  }
  closeSubscriptions()
  adopt({ accessToken: token, refreshToken: null, expiresAt: tokenExpiry(token), staff })
  return true
}

const CHANGE_PASSWORD = `mutation ChangeMyPassword($input: ChangeMyPasswordInput!) {
  changeMyPassword(input: $input) { ${STAFF} errors { code field message } }
}`

// Two-step sign-in (TOTP) of the signed-in account: begin shows a secret once, a code from
// the authenticator turns it on; the password turns it off.
const BEGIN_TOTP = `mutation BeginTotpEnrolment { beginTotpEnrolment { secret uri errors { code field message } } }`
const CONFIRM_TOTP = `mutation ConfirmTotpEnrolment($input: ConfirmTotpEnrolmentInput!) {
  confirmTotpEnrolment(input: $input) { ${STAFF} errors { code field message } }
}`
const DISABLE_TOTP = `mutation DisableTotp($input: DisableTotpInput!) {
  disableTotp(input: $input) { ${STAFF} errors { code field message } }
}`

export async function beginTotp(): Promise<{ secret: string | null; uri: string | null; errors: UserError[] }> {
  return (await gql<{ beginTotpEnrolment: { secret: string | null; uri: string | null; errors: UserError[] } }>(BEGIN_TOTP)).beginTotpEnrolment
}

async function totpChange(document: string, name: string, input: Record<string, string>): Promise<UserError[]> {
  const data = await gql<Record<string, { staff: StaffInfo | null; errors: UserError[] }>>(document, { input })
  const answer = data[name]
  if (!answer.errors.length && answer.staff) {
    session.staff = answer.staff
    persist()
  }
  return answer.errors
}
export const confirmTotp = (code: string) => totpChange(CONFIRM_TOTP, 'confirmTotpEnrolment', { code })
export const disableTotp = (password: string) => totpChange(DISABLE_TOTP, 'disableTotp', { password })

/** The signed-in account's own password; a temporary one stops being asked for. */
export async function changeMyPassword(currentPassword: string, newPassword: string): Promise<UserError[]> {
  const data = await gql<{ changeMyPassword: { staff: StaffInfo | null; errors: UserError[] } }>(CHANGE_PASSWORD, {
    input: { currentPassword, newPassword },
  })
  const answer = data.changeMyPassword
  if (!answer.errors.length && answer.staff) {
    session.staff = answer.staff
    persist()
  }
  return answer.errors
}

export function signOut(): void {
  const refreshToken = session.refreshToken
  if (refreshToken) void gql(LOGOUT, { input: { refreshToken } }, { anonymous: true }).catch(() => {})
  window.clearTimeout(refreshTimer)
  session.accessToken = ''
  session.refreshToken = null
  session.expiresAt = null
  session.staff = null
  useToken('')
  closeSubscriptions()
  persist()
}

export function chooseStore(storeId: string): void {
  session.storeId = storeId
  persist()
}

export function restore(): void {
  const raw = sessionStorage.getItem(KEY)
  if (!raw) return
  try {
    const saved = JSON.parse(raw) as Saved
    if (saved.expiresAt && new Date(saved.expiresAt).getTime() < Date.now() && !saved.refreshToken) return
    session.storeId = saved.storeId
    adopt(saved)
    if (saved.expiresAt && new Date(saved.expiresAt).getTime() < Date.now() + 60_000) void refresh()
  } catch {
    sessionStorage.removeItem(KEY)
  }
}

export function storeName(id: string): string {
  return session.staff?.stores.find((s) => s.id === id)?.name ?? id
}

export const isHeadOffice = (): boolean =>
  session.staff?.role === 'HQ_ADMIN' || session.staff?.role === 'OPERATOR'

whenUnauthorised(() => {
  if (session.staff) signOut()
})
