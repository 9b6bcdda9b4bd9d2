import { Pressable, Text } from 'react-native'

import { styles } from './styles'

export interface ButtonProps {
  title: string
  onPress: () => void
  disabled?: boolean
}

/** Button is a Pressable with a label, dimmed while disabled. */
export function Button({ title, onPress, disabled = false }: ButtonProps) {
  return (
    <Pressable accessibilityRole="button" onPress={onPress} disabled={disabled} style={[styles.button, disabled && { opacity: 0.5 }]}>
      <Text style={styles.buttonText}>{title}</Text>
    </Pressable>
  )
}

/** Link is a text button, for navigation. */
export function Link({ title, onPress }: ButtonProps) {
  return (
    <Pressable accessibilityRole="link" onPress={onPress}>
      <Text style={styles.link}>{title}</Text>
    </Pressable>
  )
}
