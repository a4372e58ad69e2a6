# The console's image: lockgate installed with its pinned dependencies, and Graphviz for the cascade
# drawing. Build from the repository root: docker build -f deploy/console.Dockerfile -t lockgate-console .
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends graphviz \
    && rm -rf /var/lib/apt/lists/* && useradd --uid 1034 --create-home lockgate
WORKDIR /src
COPY . .
RUN pip install --no-cache-dir -c constraints.txt . && rm -rf /src
WORKDIR /home/lockgate
USER 1034
EXPOSE 8700
CMD ["lockgate", "console", "--host", "0.0.0.0", "--port", "8700"]
