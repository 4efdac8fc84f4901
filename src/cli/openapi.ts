import type { Command } from 'commander';
import { example } from './connection.ts';

export function openapiCommand(program: Command): void {
  program
    .command('openapi')
    .description(
      'print the OpenAPI 3.1 document of the REST API (a daemon serves it at GET /api/v1/openapi.json)',
    )
    .addHelpText('after', example('sandboxd openapi > openapi.json'))
    .action(async () => {
      const { openapiDocument } = await import('../api/tensorlake/openapi.ts');
      process.stdout.write(`${JSON.stringify(openapiDocument(), null, 2)}\n`);
    });
}
