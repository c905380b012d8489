package logpipe.svc;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.List;
import java.util.Map;

import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;

/**
 * One OpenSearch node in this JVM, with the modules logpipe's tests use loaded as classpath
 * plugins. The distribution's launcher (security manager, bootstrap checks) is not involved:
 * this is a test server bound to 127.0.0.1, started and stopped by scripts/services.
 *
 * Usage: OpenSearchNode HOME HTTP_PORT TRANSPORT_PORT [KEY=VALUE...]; the extra node settings
 * let scripts/services start a node with a tiny write queue, to provoke real 429s.
 */
public final class OpenSearchNode extends Node {

    private static final List<Class<? extends Plugin>> PLUGINS = List.of(
            org.opensearch.transport.Netty4Plugin.class,
            org.opensearch.index.reindex.ReindexPlugin.class,
            org.opensearch.analysis.common.CommonAnalysisPlugin.class,
            org.opensearch.index.mapper.MapperExtrasPlugin.class,
            org.opensearch.painless.PainlessPlugin.class,
            org.opensearch.search.aggregations.matrix.MatrixAggregationPlugin.class);

    private OpenSearchNode(Environment environment, Collection<Class<? extends Plugin>> plugins) {
        super(environment, plugins, true);
    }

    public static void main(String[] args) throws Exception {
        Path home = Path.of(args[0]).toAbsolutePath();
        for (String dir : List.of("config", "plugins", "modules", "data", "logs")) {
            Files.createDirectories(home.resolve(dir));
        }
        Settings.Builder builder = Settings.builder()
                .put("path.home", home.toString())
                .put("path.data", home.resolve("data").toString())
                .put("path.logs", home.resolve("logs").toString())
                .put("cluster.name", "logpipe-test")
                .put("node.name", "n1")
                .put("discovery.type", "single-node")
                .put("network.host", "127.0.0.1")
                .put("http.port", args[1])
                .put("transport.port", args[2])
                .put("cluster.routing.allocation.disk.threshold_enabled", false)
                .put("action.auto_create_index", true);
        for (int i = 3; i < args.length; i++) {
            String[] pair = args[i].split("=", 2);
            builder.put(pair[0], pair[1]);
        }
        Settings settings = builder.build();
        Environment env = InternalSettingsPreparer.prepareEnvironment(
                settings, Map.of(), home.resolve("config"), () -> "n1");
        OpenSearchNode node = new OpenSearchNode(env, PLUGINS);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
            } catch (Exception e) {
                e.printStackTrace();
            }
        }, "logpipe-os-shutdown"));
        node.start();
        Thread.currentThread().join();
    }
}
