/** A process as the REST dialect shows it (`GET /api/v1/processes/{pid}`). */
export interface ProcessInfo {
  pid: number;
  status: 'running' | 'exited' | 'signaled';
  exit_code: number | null;
  signal: number | null;
  stdin_writable: boolean;
  command: string;
  args: string[];
  started_at: number;
  ended_at: number | null;
  name?: string;
  managed?: { id: string; status: 'running' | 'backing_off' | 'stopped'; restart_count: number };
}
