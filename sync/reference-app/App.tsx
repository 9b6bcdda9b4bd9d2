import { useCallback, useEffect, useState } from 'react'
import type { ReactNode } from 'react'
import { SafeAreaView, Text, View } from 'react-native'
import type { Database } from '@nozbe/watermelondb'
import type { Tokens } from '@fieldcrm/watermelondb'

import { Session } from './src/data'
import type { CheckIn, TokenStore } from './src/data'
import { Link } from './src/screens/Button'
import { CustomerScreen } from './src/screens/CustomerScreen'
import { CustomersScreen } from './src/screens/CustomersScreen'
import { LogVisitScreen } from './src/screens/LogVisitScreen'
import { PlanFollowUpScreen } from './src/screens/PlanFollowUpScreen'
import { ConflictsScreen, RejectedScreen } from './src/screens/ReviewScreens'
import { SignInScreen } from './src/screens/SignInScreen'
import { FirstSyncScreen, SyncBanner } from './src/screens/SyncStatus'
import { styles } from './src/screens/styles'

/** Where the app is: one screen and what it shows (no navigation library). */
type Route =
  | { name: 'customers' }
  | { name: 'customer'; customerId: string }
  | { name: 'logVisit'; customerId: string }
  | { name: 'planFollowUp'; customerId: string }
  | { name: 'rejected' }
  | { name: 'conflicts' }

export interface AppProps {
  /** The fieldcrm server, e.g. https://crm.example.com. */
  baseUrl: string
  database: Database
  deviceId: string
  /** Keeps the tokens between launches: load() gives the ones kept last time, clear() forgets them. */
  tokens: TokenStore & { load(): Promise<Tokens | null>; clear(): Promise<void> }
  locate?: () => Promise<CheckIn>
}

export default function App({ baseUrl, database, deviceId, tokens, locate }: AppProps) {
  const [session, setSession] = useState<Session | null>(null)
  const [loading, setLoading] = useState(true)
  const [firstSyncDone, setFirstSyncDone] = useState(false)
  const [route, setRoute] = useState<Route>({ name: 'customers' })
  // Bumped after every sync or edit: the screens read the database again.
  const [refreshKey, setRefreshKey] = useState(0)
  const refresh = useCallback(() => setRefreshKey((n) => n + 1), [])

  const sessionOptions = useCallback(
    () => ({
      baseUrl,
      database,
      deviceId,
      tokens,
      onSignedOut: () => {
        void tokens.clear()
        setSession(null)
      },
    }),
    [baseUrl, database, deviceId, tokens],
  )

  const sync = useCallback(
    async (s: Session) => {
      try {
        await s.sync()
        setFirstSyncDone(true)
      } catch {
        // The state shows the error; the data stays on the device.
      }
      refresh()
    },
    [refresh],
  )

  // On launch: continue the session kept from last time, and sync.
  useEffect(() => {
    tokens.load().then((kept) => {
      setLoading(false)
      if (!kept) return
      const s = Session.resume(sessionOptions(), kept)
      setSession(s)
      setFirstSyncDone(true) // the data of the last launch is there
      void sync(s)
    })
  }, [tokens, sessionOptions, sync])

  if (loading) return <SafeAreaView style={styles.screen} />
  if (!session) {
    return (
      <SafeAreaView style={{ flex: 1 }}>
        <SignInScreen
          onSignIn={async (email, password) => {
            const s = await Session.signIn(sessionOptions(), email, password)
            setSession(s)
            void sync(s)
          }}
        />
      </SafeAreaView>
    )
  }
  if (!firstSyncDone) {
    return (
      <SafeAreaView style={{ flex: 1 }}>
        <FirstSyncScreen session={session} onRetry={() => void sync(session)} />
      </SafeAreaView>
    )
  }

  const toCustomers = () => setRoute({ name: 'customers' })
  const edited = (customerId: string) => {
    refresh()
    setRoute({ name: 'customer', customerId })
    void sync(session) // push the edit now if the phone is online
  }
  let screen: ReactNode
  switch (route.name) {
    case 'customers':
      screen = (
        <View style={styles.screen}>
          <View style={styles.toolbar}>
            <Text style={styles.title}>Customers</Text>
            <Link title="Rejected" onPress={() => setRoute({ name: 'rejected' })} />
            <Link title="Conflicts" onPress={() => setRoute({ name: 'conflicts' })} />
            <Link
              title="Sign out"
              onPress={() => {
                void session.signOut().finally(() => {
                  void tokens.clear()
                  setFirstSyncDone(false)
                  setRoute({ name: 'customers' })
                  setSession(null)
                })
              }}
            />
          </View>
          <CustomersScreen database={database} refreshKey={refreshKey} onOpen={(customerId) => setRoute({ name: 'customer', customerId })} />
        </View>
      )
      break
    case 'customer':
      screen = (
        <CustomerScreen
          database={database}
          customerId={route.customerId}
          refreshKey={refreshKey}
          onBack={toCustomers}
          onLogVisit={() => setRoute({ name: 'logVisit', customerId: route.customerId })}
          onPlanFollowUp={() => setRoute({ name: 'planFollowUp', customerId: route.customerId })}
        />
      )
      break
    case 'logVisit':
      screen = (
        <LogVisitScreen
          database={database}
          customerId={route.customerId}
          locate={locate}
          onDone={() => edited(route.customerId)}
          onCancel={() => setRoute({ name: 'customer', customerId: route.customerId })}
        />
      )
      break
    case 'planFollowUp':
      screen = (
        <PlanFollowUpScreen
          database={database}
          customerId={route.customerId}
          onDone={() => edited(route.customerId)}
          onCancel={() => setRoute({ name: 'customer', customerId: route.customerId })}
        />
      )
      break
    case 'rejected':
      screen = <RejectedScreen session={session} refreshKey={refreshKey} onBack={toCustomers} />
      break
    case 'conflicts':
      screen = <ConflictsScreen session={session} refreshKey={refreshKey} onBack={toCustomers} />
      break
  }
  return (
    <SafeAreaView style={{ flex: 1 }}>
      <View style={{ paddingHorizontal: 16 }}>
        <SyncBanner session={session} onSync={() => void sync(session)} />
      </View>
      {screen}
    </SafeAreaView>
  )
}
