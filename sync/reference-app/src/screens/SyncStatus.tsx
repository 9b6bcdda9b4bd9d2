import { useEffect, useState } from 'react'
import { Text, View } from 'react-native'

import { progressFraction } from '../data'
import type { Session, SyncState } from '../data'
import { Button } from './Button'
import { styles } from './styles'

/** useSyncState is the session's sync state, kept current. */
export function useSyncState(session: Session): SyncState {
  const [state, setState] = useState(session.syncState)
  useEffect(() => session.subscribe(setState), [session])
  return state
}

export interface FirstSyncScreenProps {
  session: Session
  /** Runs the first sync again after a failure. */
  onRetry: () => void
}

/** FirstSyncScreen shows the first sync's progress: records and pages so far, and a bar. */
export function FirstSyncScreen({ session, onRetry }: FirstSyncScreenProps) {
  const state = useSyncState(session)
  const percent = Math.round(progressFraction(state) * 100)
  return (
    <View style={styles.screen}>
      <Text style={styles.title}>Getting your customers</Text>
      <View style={{ height: 8, backgroundColor: '#eee', borderRadius: 4 }}>
        <View style={{ height: 8, width: `${percent}%`, backgroundColor: '#1f6feb', borderRadius: 4 }} />
      </View>
      <Text style={styles.rowDetail}>
        {state.done} of about {state.expected} records, {state.pages} pages ({percent}%)
      </Text>
      {state.status === 'failed' && (
        <>
          <Text style={styles.error}>{state.error}</Text>
          <Button title="Try again" onPress={onRetry} />
        </>
      )}
    </View>
  )
}

export interface SyncBannerProps {
  session: Session
  onSync: () => void
}

/** SyncBanner is the one-line sync status above the lists, with a sync button. */
export function SyncBanner({ session, onSync }: SyncBannerProps) {
  const state = useSyncState(session)
  const text =
    state.status === 'syncing'
      ? `Syncing… ${state.done} records`
      : state.status === 'failed'
        ? `Sync failed: ${state.error}`
        : state.lastSyncedAt
          ? `Synced at ${new Date(state.lastSyncedAt).toLocaleTimeString()}`
          : 'Not synced yet'
  return (
    <View style={styles.toolbar}>
      <Text style={state.status === 'failed' ? styles.error : styles.rowDetail}>{text}</Text>
      <Button title="Sync" onPress={onSync} disabled={state.status === 'syncing'} />
    </View>
  )
}
