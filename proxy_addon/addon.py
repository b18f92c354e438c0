"""The script mitmproxy loads: ``mitmdump -s proxy_addon/addon.py --set linkwarn_...``.

mitmproxy runs a script without registering it as a module, so the addons
themselves live in the package; this file makes the one `Runtime` they share
and hands it to both.
"""

from proxy_addon.api import LocalApi
from proxy_addon.health import Monitoring
from proxy_addon.interceptor import Linkwarn
from proxy_addon.runtime import Runtime

runtime = Runtime()
addons = [Linkwarn(runtime), LocalApi(runtime), Monitoring(runtime)]
