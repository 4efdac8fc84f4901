import type { Command } from 'commander';
export function cpCommand(_program: Command): void {}
