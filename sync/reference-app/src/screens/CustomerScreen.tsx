import { useEffect, useState } from 'react'
import { FlatList, Text, View } from 'react-native'
import type { Database } from '@nozbe/watermelondb'

import { customerTimeline } from '../data'
import type { CustomerTimeline } from '../data'
import { Button, Link } from './Button'
import { styles } from './styles'

export interface CustomerScreenProps {
  database: Database
  customerId: string
  refreshKey: number
  onLogVisit: () => void
  onPlanFollowUp: () => void
  onBack: () => void
}

/** CustomerScreen is a customer with its timeline of interactions and tasks, newest first. */
export function CustomerScreen({ database, customerId, refreshKey, onLogVisit, onPlanFollowUp, onBack }: CustomerScreenProps) {
  const [timeline, setTimeline] = useState<CustomerTimeline | null>(null)
  const [error, setError] = useState<string | null>(null)

  useEffect(() => {
    let current = true
    customerTimeline(database, customerId).then(
      (t) => current && setTimeline(t),
      (err: unknown) => current && setError(err instanceof Error ? err.message : String(err)),
    )
    return () => {
      current = false
    }
  }, [database, customerId, refreshKey])

  return (
    <View style={styles.screen}>
      <Link title="‹ Customers" onPress={onBack} />
      {error && <Text style={styles.error}>{error}</Text>}
      {timeline && (
        <>
          <Text style={styles.title}>{timeline.customer.name}</Text>
          <Text style={styles.rowDetail}>{timeline.customer.number}</Text>
          <View style={styles.toolbar}>
            <Button title="Log a visit" onPress={onLogVisit} />
            <Button title="Plan a follow-up" onPress={onPlanFollowUp} />
          </View>
          <FlatList
            data={timeline.entries}
            keyExtractor={(e) => e.kind + e.id}
            renderItem={({ item }) => (
              <View style={styles.row}>
                <Text style={styles.rowTitle}>
                  {item.kind === 'task' ? '☐ ' : ''}
                  {item.title}
                  {item.unsynced ? ' (not synced)' : ''}
                </Text>
                <Text style={styles.rowDetail}>{item.at ? new Date(item.at).toLocaleString() : ''}</Text>
                {item.detail !== '' && <Text style={styles.rowDetail}>{item.detail}</Text>}
              </View>
            )}
            ListEmptyComponent={<Text style={styles.rowDetail}>Nothing yet.</Text>}
          />
        </>
      )}
    </View>
  )
}
