import { useEffect, useState } from 'react'
import { FlatList, Text, View } from 'react-native'

import { discardRejected, openConflicts, rejectedItems, resolveConflict } from '../data'
import type { RejectedItem, Session } from '../data'
import type { Conflict } from '../generated/models'
import { Button, Link } from './Button'
import { styles } from './styles'

export interface RejectedScreenProps {
  session: Session
  refreshKey: number
  onBack: () => void
}

/**
 * RejectedScreen lists the records the server refused, with its reasons.
 * They stay on the phone; editing one sends it again at the next sync,
 * or the rep drops it.
 */
export function RejectedScreen({ session, refreshKey, onBack }: RejectedScreenProps) {
  const [items, setItems] = useState<RejectedItem[]>([])
  const [reload, setReload] = useState(0)
  useEffect(() => {
    let current = true
    rejectedItems(session).then((list) => current && setItems(list))
    return () => {
      current = false
    }
  }, [session, refreshKey, reload])

  const discard = async (item: RejectedItem) => {
    await discardRejected(session.database, item)
    setReload((n) => n + 1)
  }

  return (
    <View style={styles.screen}>
      <Link title="‹ Customers" onPress={onBack} />
      <Text style={styles.title}>Not accepted by the server</Text>
      <FlatList
        data={items}
        keyExtractor={(r) => r.table + r.id}
        renderItem={({ item }) => (
          <View style={styles.row}>
            <Text style={styles.rowTitle}>{item.label}</Text>
            <Text style={styles.error}>{item.reason}</Text>
            <Text style={styles.rowDetail}>{item.table}</Text>
            <Button title="Drop it from this phone" onPress={() => void discard(item)} />
          </View>
        )}
        ListEmptyComponent={<Text style={styles.rowDetail}>Everything was accepted.</Text>}
      />
    </View>
  )
}

export interface ConflictsScreenProps {
  session: Session
  refreshKey: number
  onBack: () => void
}

/** ConflictsScreen lists the open conflicts (a field changed on two sides) to keep or revert. */
export function ConflictsScreen({ session, refreshKey, onBack }: ConflictsScreenProps) {
  const [conflicts, setConflicts] = useState<Conflict[]>([])
  const [reload, setReload] = useState(0)
  const [error, setError] = useState<string | null>(null)

  useEffect(() => {
    let current = true
    openConflicts(session.database).then((list) => current && setConflicts(list))
    return () => {
      current = false
    }
  }, [session, refreshKey, reload])

  const resolve = async (id: string, action: 'keep' | 'revert') => {
    setError(null)
    try {
      await resolveConflict(session, id, action)
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err))
    }
    setReload((n) => n + 1)
  }

  return (
    <View style={styles.screen}>
      <Link title="‹ Customers" onPress={onBack} />
      <Text style={styles.title}>Conflicts</Text>
      {error && <Text style={styles.error}>{error}</Text>}
      <FlatList
        data={conflicts}
        keyExtractor={(c) => c.id}
        renderItem={({ item }) => (
          <View style={styles.row}>
            <Text style={styles.rowTitle}>
              {item.tableValue} · {item.column}
            </Text>
            <Text style={styles.rowDetail}>
              Server: {item.serverValue} ({item.serverBy}) · This device: {item.deviceValue} · Kept: {item.kept}
            </Text>
            <View style={styles.toolbar}>
              <Button title={`Keep the ${item.kept} value`} onPress={() => resolve(item.id, 'keep')} />
              <Button title="Revert" onPress={() => resolve(item.id, 'revert')} />
            </View>
          </View>
        )}
        ListEmptyComponent={<Text style={styles.rowDetail}>No conflicts.</Text>}
      />
    </View>
  )
}
