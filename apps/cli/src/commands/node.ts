import { consoleLogger } from '@consensus-kit/core/host';
import { readNodeConfig } from '../config';
import { runNode } from '../node-runner';
import { checkProtocolOptions } from '../protocols';

/**
 * `consensus-cli node --config <file>`: runs one node in the foreground until SIGINT/SIGTERM, then stops it
 * cleanly (the batch in flight is made durable first). This is also how a node is deployed on a machine.
 */
export async function node(o: { config: string }): Promise<void> {
  const config = readNodeConfig(o.config);
  await checkProtocolOptions(config.protocol, config.protocolOptions, `${o.config}: protocolOptions`);
  const logger = consoleLogger(config.id, config.logLevel ?? 'info');
  const running = await runNode(config, logger);
  logger.info('node started', { pid: process.pid, address: `${config.listen.host}:${config.listen.port}`, http: `${config.http.host}:${config.http.port}`, protocol: config.protocol });
  await new Promise<void>((resolve) => {
    const onSignal = (signal: string) => {
      logger.info('stopping', { signal });
      running.stop().then(resolve, (e: unknown) => {
        logger.error('stop failed', { error: String(e) });
        resolve();
      });
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  logger.info('stopped');
}
